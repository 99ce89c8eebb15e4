"""Many workers on one shared storage: storages, the study's lock and trial budget, claims, worker loops, launch, status, the gRPC proxy.

Nothing here knows what a trial trains: a worker runs whatever objective it is handed. This is the
machinery that lets N processes on N machines share one Optuna study safely (exact budgets, dead
workers' trials re-queued, work meant to happen once done once). May import: training (to free a
finished trial's memory), config.
"""
import lazy_loader

# Public names, loaded on first use so that importing a layer stays cheap (and torch-free).
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "storage": ['open_storage', 'check_storage_url', 'missing_storage', 'storage_url_of'],
        "budget": ['TrialCount', 'AdmissionLock', 'LocalGate', 'gate_for'],
        "claims": ['OncePerStudy'],
        "workers": ['TrialLoop', 'worker_id', 'StopRequested', 'SpaceExhausted'],
        "launch": ['launch', 'plan_slots'],
        "monitor": ['status_text', 'cleanup'],
        "proxy": ['serve'],
    },
)
