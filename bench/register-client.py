# SPDX-License-Identifier: Apache-2.0
# RegisterDevice calls one at a time from Python grpcio (gRPC C-core, Debian python3-grpcio):
# a compiled client, like edgecore's Go one, so the figure is the mapper's and not the client's
# warm-up. Used by bench/framework.ts.
# Usage: register-client.py <generated-python-dir> <mapper-socket> <calls> <first-index> <properties> [dial-per-call]
# dial-per-call: a new channel and connection for every call, as edgecore's DMI client does (a
# non-blocking grpc.Dial, one RPC, Close); otherwise one channel for all calls.
# Prints one JSON object: allAnsweredMs, callLatencyP50Ms, callLatencyP99Ms, meanMsPerTenthOfCalls.
import json
import sys
import time

sys.path.insert(0, sys.argv[1])
import grpc  # noqa: E402
from google.protobuf import any_pb2, wrappers_pb2  # noqa: E402

import api_pb2  # noqa: E402
import api_pb2_grpc  # noqa: E402

SOCK, CALLS, FIRST, PROPS = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
DIAL_PER_CALL = len(sys.argv) > 6 and sys.argv[6] == "dial-per-call"
# The same model and devices as bench/framework.ts builds.
KINDS = ["randomWalk", "counter", "sine", "toggle", "constant"]
TYPES = ["FLOAT", "INT", "DOUBLE", "BOOLEAN", "FLOAT"]


def cv(values):
    out = api_pb2.CustomizedValue()
    for k, v in values.items():
        a = any_pb2.Any()
        a.Pack(wrappers_pb2.StringValue(value=v) if isinstance(v, str) else wrappers_pb2.Int64Value(value=v))
        out.data[k].CopyFrom(a)
    return out


MODEL = api_pb2.DeviceModel(
    name="bench-model",
    namespace="default",
    spec=api_pb2.DeviceModelSpec(properties=[api_pb2.ModelProperty(name=f"p{i}", type=TYPES[i % 5], accessMode="ReadOnly") for i in range(PROPS)]),
)


def device(i):
    return api_pb2.Device(
        name=f"dev-{i}",
        namespace="default",
        spec=api_pb2.DeviceSpec(
            deviceModelReference="bench-model",
            protocol=api_pb2.ProtocolConfig(protocolName="virtual", configData=cv({"seed": i + 1})),
            properties=[
                api_pb2.DeviceProperty(
                    name=f"p{p}",
                    collectCycle=1000,
                    reportCycle=1000,
                    reportToCloud=True,
                    visitors=api_pb2.VisitorConfig(protocolName="virtual", configData=cv({"kind": KINDS[p % 5], "min": 0, "max": 100})),
                )
                for p in range(PROPS)
            ],
        ),
        status=api_pb2.DeviceStatus(reportToCloud=False, reportCycle=0),
    )


channel = grpc.insecure_channel("unix:" + SOCK)
stub = api_pb2_grpc.DeviceMapperServiceStub(channel)
stub.CreateDeviceModel(api_pb2.CreateDeviceModelRequest(model=MODEL), timeout=10)
requests = [api_pb2.RegisterDeviceRequest(device=device(FIRST + i)) for i in range(CALLS)]
latencies = []
t0 = time.perf_counter()
for r in requests:
    a = time.perf_counter()
    if DIAL_PER_CALL:
        # A channel of its own subchannel pool: a new connection (grpcio would otherwise share one
        # between channels to the same target; Go's grpc.Dial does not).
        with grpc.insecure_channel("unix:" + SOCK, options=[("grpc.use_local_subchannel_pool", 1)]) as ch:
            api_pb2_grpc.DeviceMapperServiceStub(ch).RegisterDevice(r, timeout=10)
    else:
        stub.RegisterDevice(r, timeout=10)
    latencies.append((time.perf_counter() - a) * 1000)
total = (time.perf_counter() - t0) * 1000
# Mean latency of each tenth of the calls, in order: the mapper's warm-up shows in the first ones.
tenths = [round(sum(latencies[k * CALLS // 10:(k + 1) * CALLS // 10]) / max(1, (k + 1) * CALLS // 10 - k * CALLS // 10), 2) for k in range(10)]
latencies.sort()


def pct(p):
    return round(latencies[min(len(latencies) - 1, max(0, -(-p * len(latencies) // 100) - 1))], 2)


print(json.dumps({"allAnsweredMs": round(total), "callLatencyP50Ms": pct(50), "callLatencyP99Ms": pct(99), "meanMsPerTenthOfCalls": tenths}))
