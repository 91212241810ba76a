"""`rung report RUN`: one self-contained HTML page per run, the decision first."""

from rung.report.render import render_report, report_path, write_report

__all__ = ["render_report", "report_path", "write_report"]
