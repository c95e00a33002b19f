"""Each probe kind (``protocol.Kind``) and the function inside the sandbox that answers it."""
from .. import probe
from .. import protocol
from .calls import probe_calls
from .model import probe_model

PROBES = {protocol.Kind.MODEL: probe_model, protocol.Kind.CALLS: probe_calls,
          protocol.Kind.TRAIN_STEP: probe.probe_train_step, protocol.Kind.EVALUATE: probe.probe_evaluate,
          protocol.Kind.TRANSFER: probe.probe_transfer}
