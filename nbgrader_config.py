"""nbgrader configuration for the CNN course (the kit's folder is the course root).

`cnn-kit demo` and `cnn-kit autograde` copy it into the course folder they grade, where it sits
beside source/, release/, submitted/, autograded/ and feedback/ (plain `nbgrader` commands run
there read it too).
"""
import os
import warnings

from sqlalchemy.exc import SAWarning
from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearOutput, DeduplicateIds,
                                    GetGrades, LimitOutput, OverwriteKernelspec, SaveAutoGrades)

from autograder.course.nbgrader_hook import (ClearHiddenTestsInFeedback, GradeOutsideKernel, RestoreHiddenTests,
                                             SafeExecute, WidgetsAsText, apply_settings)
from autograder.course.steps import tools_path
from autograder.feedback import terminal
from autograder.feedback.inert import FeedbackExporter
from autograder.course.late import LateNoteInFeedback
from autograder.settings import Settings

# nbgrader creates each submission's gradebook rows through SQLAlchemy relationships before it adds
# them to its session; SQLAlchemy 2 warns about that autoflush, and nbgrader adds and commits the
# rows right after. This one warning, from nbgrader's gradebook module alone, is noise to instructors.
warnings.filterwarnings("ignore", message=r"Object of type <\w+> not in session", category=SAWarning,
                        module=r"nbgrader\.api")

c = get_config()  # noqa: F821  (provided by nbgrader when it loads this file)

# The edge for a plain `nbgrader ...` run: CNN_KIT_* settings are read once here, relative paths taken
# from the folder nbgrader was started in, and handed to the kit's preprocessor and kernel manager (and
# nbgrader's limits and gradebook) as an argument: nothing below reads the environment. The kernel gets the
# few it needs from its manager (autograder/sandbox/kernel.py). `cnn-kit` passes its own settings the same
# way after loading this file (autograder/course/steps.py: nbgrader_api).
settings = Settings.build(os.environ, os.getcwd())
apply_settings(c, settings)
# nbgrader starts `alembic` by name, with this process's environment: this interpreter's own is found first.
os.environ["PATH"] = tools_path(os.environ.get("PATH", ""))
# What nbgrader and the kit print (log lines quoting a submission, the kernel's relayed output) shows control
# characters as text, never sends them: the terminal stays the instructor's under plain `nbgrader` too.
terminal.install()

c.CourseDirectory.course_id = "cnn-course"
c.ExportApp.plugin_class = "autograder.course.grades_export.GradesExporter"  # grades.csv safe in a spreadsheet

# Blanks look like the lecture's: `nn.Sequential(` ... `)` with only a comment inside. Functions
# keep their own `raise NotImplementedError(...)` after the solution region, so stubs fail loudly.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Autograde: run the notebook for its outputs (a training cell may take minutes), then write every
# graded cell's result from the kit's verdict, judged outside the student's kernel.
c.Execute.interrupt_on_timeout = True  # the seconds per cell: settings.cell_timeout (apply_settings above)
# The notebook's kernel (autograder/sandbox/kernel.py) works in a bounded scratch copy of its folder; the whole
# notebook has a wall clock, and output beyond a cap is cut with a line saying so (both flagged).
# (settings.notebook_seconds, apply_settings above)
c.SafeExecute.output_bytes = 2 << 20
# Nothing but regular files and folders stays in autograded/<student>/<assignment>/ for nbgrader's later
# steps to open or copy (set_permissions, generate_feedback): see autograder/course/hostfs.py.
c.Autograde.post_convert_hook = "autograder.course.hostfs.after_autograde"
c.GenerateFeedback.pre_convert_hook = "autograder.course.hostfs.before_feedback"
c.OverwriteCells.add_missing_cells = True          # deleted test cells come back (and score from the kit)
c.Autograde.sanitize_preprocessors = [ClearOutput, DeduplicateIds, OverwriteKernelspec, RestoreHiddenTests,
                                      CheckCellMetadata]
c.Autograde.autograde_preprocessors = [
    SafeExecute,
    GradeOutsideKernel,
    ClearMetadataPreprocessor,
    LimitOutput,
    SaveAutoGrades,
    AssignLatePenalties,
    CheckCellMetadata,
]
# Late penalties (docs/late-penalties.md): nbgrader's AssignLatePenalties above asks the kit's plugin, in every
# grading path (cnn-kit autograde, --workers, plain nbgrader autograde). Off (0 %) until set, for example:
#   c.CnnKitLatePenalty.percent_per_day = 10   # % of the earned score per day, or part of one (or percent_per_hour)
#   c.CnnKitLatePenalty.grace_minutes = 15     # up to 15 min after the due date is on time
#   c.CnnKitLatePenalty.cap_percent = 50       # never more than half the earned score
# The due date is the gradebook's: nbgrader db assignment add ASSIGNMENT --duedate="2026-03-02 17:00 UTC".
c.AssignLatePenalties.plugin_class = "autograder.course.late.CnnKitLatePenalty"
c.LimitOutput.max_lines = 200
c.LimitOutput.max_traceback = 40

# Feedback shows the verdicts, never the hidden tests' source; a page where nothing a submission wrote runs or
# loads (its outputs and markdown sanitised, no MathJax, a Content-Security-Policy): autograder/feedback/inert.py.
c.GenerateFeedback.exporter_class = FeedbackExporter
# A late submission's page opens with how late it was, the course's rule and the points lost.
c.GenerateFeedback.preprocessors = [GetGrades, LateNoteInFeedback, ClearHiddenTestsInFeedback, WidgetsAsText,
                                    CSSHTMLHeaderPreprocessor]
