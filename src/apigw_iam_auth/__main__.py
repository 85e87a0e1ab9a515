"""``python -m apigw_iam_auth``: the same as the ``apigw-iam-auth`` command."""

import sys

from apigw_iam_auth.cli import main

sys.exit(main())
