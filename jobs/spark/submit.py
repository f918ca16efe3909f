"""``spark-submit`` entry point: the ``emorec`` command line as a script.

``jobs/cli.py`` uses relative imports, so it cannot be the application file itself; this
file can::

    spark-submit --master yarn --deploy-mode client \\
        --conf spark.executor.memory=4g --conf spark.executor.instances=8 \\
        "$(python -c 'import emorec.jobs.spark.submit as m; print(m.__file__)')" \\
        run --engine spark -w /shared/emorec-ws --reviews /shared/exports/*.jsonl.gz --items /shared/items.csv

The session spark-submit configures is the one the stages use (see
:func:`jobs.spark.session.get_session`).
"""

from __future__ import annotations

import os
import sys

# Run as a script, this file's folder would come first on sys.path and shadow the top-level
# packages (jobs/spark/profiles.py is not the ``profiles`` package).
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

from emorec.jobs.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
