"""The evaluation report: ``document.write_report`` writes ``eval.json``, ``eval.md`` and the plots from what
``index_builder.evaluation.run.evaluate_run`` measured; each section (summary sentence, markdown, plot) is a module
here, and none computes a metric."""
