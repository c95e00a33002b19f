"""nbgrader configuration for the CNN course (the kit's folder is the course root).

Grading runs against a copy (see `cnn-kit course`), where this file sits at the
root of the course folder beside source/, release/, submitted/, autograded/ and
feedback/.
"""
import os

from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearHiddenTests,
                                    GetGrades, LimitOutput, SaveAutoGrades)

from autograder.nbgrader_hook import GradeOutsideKernel, SafeExecute

c = get_config()  # noqa: F821  (provided by nbgrader when it loads this file)

c.CourseDirectory.course_id = "cnn-course"
if os.environ.get("CNN_KIT_DB_URL"):  # e.g. postgresql://... for grading a class on several workers
    c.CourseDirectory.db_url = os.environ["CNN_KIT_DB_URL"]

# Blanks look like the lecture's: `nn.Sequential(` ... `)` with only a comment inside. Functions
# keep their own `raise NotImplementedError(...)` after the solution region, so stubs fail loudly.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Autograde: run the notebook for its outputs (a training cell may take minutes), then write every
# graded cell's result from the kit's verdict, judged outside the student's kernel.
c.Execute.timeout = int(os.environ.get("CNN_KIT_CELL_TIMEOUT", "600"))  # seconds per cell
c.Execute.interrupt_on_timeout = True
# The notebook's kernel (autograder/kernel.py) works in a bounded scratch copy of its folder; the whole
# notebook has a wall clock, and output beyond a cap is cut with a line saying so (both flagged).
c.SafeExecute.notebook_seconds = int(os.environ.get("CNN_KIT_NOTEBOOK_SECONDS", "1800"))
c.SafeExecute.output_bytes = 2 << 20
# Nothing but regular files and folders stays in autograded/<student>/<assignment>/ for nbgrader's later
# steps to open or copy (set_permissions, generate_feedback): see autograder/hostfs.py.
c.Autograde.post_convert_hook = "autograder.hostfs.after_autograde"
c.GenerateFeedback.pre_convert_hook = "autograder.hostfs.before_feedback"
c.OverwriteCells.add_missing_cells = True          # deleted test cells come back (and score from the kit)
c.Autograde.autograde_preprocessors = [
    SafeExecute,
    GradeOutsideKernel,
    ClearMetadataPreprocessor,
    LimitOutput,
    SaveAutoGrades,
    AssignLatePenalties,
    CheckCellMetadata,
]
c.GradeOutsideKernel.profile = os.environ.get("CNN_KIT_PROFILE", "")
c.LimitOutput.max_lines = 200
c.LimitOutput.max_traceback = 40

# Feedback shows the verdicts, never the hidden tests' source.
c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, CSSHTMLHeaderPreprocessor]
