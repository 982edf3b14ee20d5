# Grants the mapper's group access to the DMI socket directory with POSIX ACLs (run as root by the chart's
# prepare-dmi-dir init container, or by hand on the edge node). Arguments: DIR GID EDGECORE_SOCK DEFAULT_ACL(true|false)
# - DIR gets g:GID:rwx, so the non-root mapper can create (and replace) its own socket there.
# - DEFAULT_ACL=true also sets a default ACL on DIR, so sockets edgecore re-creates after a restart inherit g:GID:rwx.
#   AF_UNIX bind() applies the creator's umask before that, so the entry is only effective (group write) when edgecore
#   runs with umask 0002 (systemd drop-in UMask=0002); with 022 the mapper pod must restart. Dedicated directory only.
# - An existing EDGECORE_SOCK gets g:GID:rw now (connecting to a unix socket needs write permission on it).
set -eu
dir="$1"
gid="$2"
sock="$3"
default_acl="$4"
case "$gid" in '' | *[!0-9]*) echo "prepare-dmi-dir: GID must be numeric, got '$gid'" >&2; exit 2 ;; esac
[ -d "$dir" ] || { echo "prepare-dmi-dir: $dir is not a directory" >&2; exit 2; }
setfacl -m "g:${gid}:rwx,m::rwx" "$dir"
if [ "$default_acl" = true ]; then
  setfacl -d -m "g:${gid}:rwx,m::rwx" "$dir"
fi
if [ -S "$sock" ]; then
  setfacl -m "g:${gid}:rw,m::rw" "$sock"
fi
echo "prepare-dmi-dir: group ${gid} may create sockets in ${dir} (default ACL: ${default_acl}); edgecore socket ${sock}: $([ -S "$sock" ] && echo granted || echo 'not there yet')"
