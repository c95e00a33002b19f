"""nbgrader's ``export`` with cells a spreadsheet never runs: ``grades.csv`` through :mod:`autograder.feedback.spreadsheet`.

The kit's ``nbgrader_config.py`` makes it nbgrader's exporter (``c.ExportApp.plugin_class``), and
``cnn-kit export`` names it (``--exporter``), so a course folder made before still gets it.
"""
from pathlib import Path

from nbgrader.api import Gradebook
from nbgrader.plugins import CsvExportPlugin

from autograder.course.folder import Course
from autograder.feedback import spreadsheet


class GradesExporter(CsvExportPlugin):
    """nbgrader's CSV export (the same columns and rows), every cell safe with ',' or ';' as separator."""

    def export(self, gradebook: Gradebook) -> None:
        dest = self.to or Course(Path()).grades_csv.name  # in the folder nbgrader runs in: the course's
        self.log.info("Exporting grades to %s", dest)
        spreadsheet.write_grades(gradebook, dest, [str(a) for a in self.assignment], [str(s) for s in self.student])
