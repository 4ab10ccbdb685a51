"""The Pulumi program as components, one concern per module; `program.provision` composes them.

`infra/__main__.py` runs it under the Pulumi engine, `preview.preview_stage` under Pulumi's mocks.
"""
