"""The trace-replay harness: the Alibaba openb trace (pod and node lists) replayed through
the placement policies, one pod at a time, as the FGD paper measures them (B1, B2). It uses
the engine; the engine never uses it."""
