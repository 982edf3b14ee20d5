{{/* Names */}}
{{- define "mapper.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mapper.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Namespace of every object: values.namespace (upstream usbmapper form) or the release namespace. */}}
{{- define "mapper.namespace" -}}
{{- default .Release.Namespace .Values.namespace -}}
{{- end -}}

{{- define "mapper.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mapper.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mapper.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "mapper.labels" -}}
helm.sh/chart: {{ include "mapper.chart" . }}
{{ include "mapper.selectorLabels" . }}
app.kubernetes.io/version: {{ include "mapper.imageTag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/component: device-mapper
app.kubernetes.io/part-of: kubeedge
app.kubernetes.io/managed-by: {{ .Release.Service }}
mapperkit.io/protocol: {{ .Values.config.common.protocol | trunc 63 | trimSuffix "-" | quote }}
{{- end -}}

{{- define "mapper.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "mapper.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Image reference: repository@digest when a digest is given, else repository:tag. */}}
{{- define "mapper.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag -}}
{{- end -}}

{{- define "mapper.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (include "mapper.imageTag" .) -}}
{{- end -}}
{{- end -}}

{{/* DMI socket directory without a trailing slash. */}}
{{- define "mapper.socketDir" -}}
{{- $d := .Values.dmi.socketDir -}}
{{- if and (ne $d "/") (hasSuffix "/" $d) -}}{{- $d = trimSuffix "/" $d -}}{{- end -}}
{{- $d -}}
{{- end -}}

{{/*
The effective config.yaml as a dict (JSON-encoded, so callers can fromJson it): socket paths default into the socket
directory, http_port is written as a string (upstream's Go struct field is a string).
*/}}
{{- define "mapper.configDict" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- $dir := include "mapper.socketDir" . -}}
{{- $grpc := default (dict) $cfg.grpc_server -}}
{{- $common := default (dict) $cfg.common -}}
{{- if not $grpc.socket_path -}}
{{- $_ := set $grpc "socket_path" (printf "%s/%s.sock" $dir $common.name) -}}
{{- end -}}
{{- if not $common.edgecore_sock -}}
{{- $_ := set $common "edgecore_sock" (printf "%s/dmi.sock" $dir) -}}
{{- end -}}
{{- $_ := set $common "http_port" (toString (default 7777 $common.http_port)) -}}
{{- $_ := set $cfg "grpc_server" $grpc -}}
{{- $_ := set $cfg "common" $common -}}
{{- toJson $cfg -}}
{{- end -}}

{{- define "mapper.bufferDir" -}}
{{- $cfg := include "mapper.configDict" . | fromJson -}}
{{- $dp := default (dict) $cfg.data_plane -}}
{{- default "/var/lib/mapperkit/buffer" $dp.buffer_dir -}}
{{- end -}}

{{- define "mapper.httpPort" -}}
{{- default 7777 .Values.config.common.http_port | int -}}
{{- end -}}

{{/*
Checks that JSON Schema cannot express (relations between keys). Fails the render with a message naming the key.
*/}}
{{- define "mapper.validate" -}}
{{- $cfg := include "mapper.configDict" . | fromJson -}}
{{- $dir := include "mapper.socketDir" . -}}
{{- range $key, $path := dict "config.grpc_server.socket_path" $cfg.grpc_server.socket_path "config.common.edgecore_sock" $cfg.common.edgecore_sock -}}
{{- if ne (dir $path) $dir -}}
{{- fail (printf "%s (%s) must be a file directly in dmi.socketDir (%s): only that directory is mounted into the pod" $key $path $dir) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.dmi.prepare.enabled .Values.dmi.prepare.defaultAcl (eq $dir "/etc/kubeedge") -}}
{{- fail "dmi.prepare.defaultAcl must be false when dmi.socketDir is /etc/kubeedge: a default ACL there would give the mapper's group access to every file edgecore writes later (certificates included)" -}}
{{- end -}}
{{- if and .Values.dmi.prepare.enabled (not .Values.podSecurityContext.runAsGroup) -}}
{{- fail "podSecurityContext.runAsGroup is required when dmi.prepare.enabled: the init container grants that group access to dmi.socketDir" -}}
{{- end -}}
{{- $rest := default (dict) $cfg.rest -}}
{{- if and (hasKey $rest "enabled") (not $rest.enabled) (or .Values.probes.liveness.enabled .Values.probes.readiness.enabled .Values.probes.startup.enabled) -}}
{{- fail "config.rest.enabled is false, but the probes call the REST server (/healthz, /readyz): disable probes.* too, or keep the REST server" -}}
{{- end -}}
{{- if and (or .Values.probes.liveness.enabled .Values.probes.readiness.enabled) (hasPrefix "127." (toString $rest.bind_address)) -}}
{{- fail (printf "config.rest.bind_address %s is loopback: kubelet probes connect to the pod IP (use 0.0.0.0)" (toString $rest.bind_address)) -}}
{{- end -}}
{{- $seen := dict -}}
{{- range $i, $m := .Values.nodeSelectorAndDevPath.mapper -}}
{{- if hasKey $seen $m.edgeNode -}}
{{- fail (printf "nodeSelectorAndDevPath.mapper[%d].edgeNode %q is listed twice: one mapper per node (it owns the node's %s socket); list all devices of a node in one entry's devPaths" $i $m.edgeNode $cfg.grpc_server.socket_path) -}}
{{- end -}}
{{- $_ := set $seen $m.edgeNode true -}}
{{- if and (eq $.Values.devices.access "plugin") (or $m.devPath $m.devPaths) (not (or $m.resourceName $.Values.devices.resourceName)) -}}
{{- fail (printf "nodeSelectorAndDevPath.mapper[%d] (%s): devices.access=plugin needs devices.resourceName or the entry's resourceName (the device plugin's resource for its device)" $i $m.edgeNode) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* All device paths of one nodeSelectorAndDevPath.mapper entry (devPath first, then devPaths). */}}
{{- define "mapper.entryDevPaths" -}}
{{- $paths := list -}}
{{- if .devPath -}}{{- $paths = append $paths .devPath -}}{{- end -}}
{{- range .devPaths -}}{{- $paths = append $paths . -}}{{- end -}}
{{- toJson (uniq $paths) -}}
{{- end -}}

{{/* Workload name of a pinned entry: <fullname>-<edgeNode>, shortened with a hash when over 63 characters. */}}
{{- define "mapper.pinnedName" -}}
{{- $full := include "mapper.fullname" .root -}}
{{- $node := .node | lower | replace "." "-" -}}
{{- $name := printf "%s-%s" $full $node -}}
{{- if gt (len $name) 63 -}}
{{- $name = printf "%s-%s" ($name | trunc 54 | trimSuffix "-") (sha256sum .node | trunc 8) -}}
{{- end -}}
{{- $name -}}
{{- end -}}
