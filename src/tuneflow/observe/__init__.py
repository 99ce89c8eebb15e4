"""What people look at: progress lines and the live display, tables, the HTML report, the dashboard, images.

May import: final, study and everything below them (it writes the export beside the report).
"""
import lazy_loader

# Public names, loaded on first use so that importing a layer stays cheap (and torch-free).
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "watching": ['watching_hooks'],
        "progress": ['ProgressPrinter'],
        "live_display": ['LiveDisplay', 'publish_evaluation'],
        "tables": ['format_table', 'format_values'],
        "report": ['write_report', 'build_report'],
        "dashboard": ['serve', 'sync_study_note', 'study_note', 'resolve_target'],
        "artifacts": ['upload_trial_artifacts'],
        "warm_start_report": ['warm_start_section', 'warm_started_trials'],
        "ranking_report": ['ranking_section'],
        "verdict_report": ['verdict_lines', 'verdict_section', 'GAIN_FOOTER'],
        "pruning_report": ['pruned_section', 'pruned_rows'],
    },
)
