"""B2 gang/MIG cases on a synthetic 10k-node fleet of built-in machines (HGX H100/A100, L40S,
GB200 trays; 5 sites): latency of place_contract for a 64-replica gang, a MIG slice and a
single GPU, 15 decisions each on an evolving fleet. Run: .venv/bin/python benchmarks/bench_contract_latency.py"""

# ruff: noqa: E501, E701, E702
import statistics
import time

from stratum.api.v1alpha1.contract import Contract
from stratum.scheduling.contracts import FleetState, WorkloadAsk, place_contract
from stratum.testing.fleets import fleet_node

nodes=[]
profiles=["hgx-h100-80gb","hgx-a100-80gb","pcie-l40s-8gpu","gb200-nvl72-tray"]
for i in range(10000):
    p=profiles[i%4] if i%4!=3 else "gb200-nvl72-tray"
    nodes.append(fleet_node(f"n{i:05d}", p, site=f"s{i%5}", rack=f"r{(i//18)}"))
t=time.perf_counter(); st=FleetState.build(nodes); print("build s", round(time.perf_counter()-t,2))
cases={"gang64x8 rack/rdma": WorkloadAsk("t",64,Contract.model_validate({"compute":{"gpus":8},"topology":{"withinReplica":"nvlink","acrossReplicas":"rdma"}})),
 "gang64x1 nvlink-domain": WorkloadAsk("t",64,Contract.model_validate({"compute":{"gpus":1},"topology":{"acrossReplicas":"nvlink-domain"}})),
 "mig 1g.10gb": WorkloadAsk("t",1,Contract.model_validate({"compute":{"migProfile":"1g.10gb"}})),
 "single 1 GPU": WorkloadAsk("t",1,Contract.model_validate({"compute":{"gpus":1}}))}
for name,a in cases.items():
    ts=[]
    s=st
    for _ in range(15):
        t=time.perf_counter(); d=place_contract(s,a); ts.append((time.perf_counter()-t)*1000)
        if d.placed: s=s.bind("t", d.bindings)
    ts.sort()
    print(name, d.placed, d.tier, "p50", round(statistics.median(ts),1), "max(~p99 of 15)", round(ts[-1],1))
