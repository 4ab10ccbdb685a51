"""Promotion: plan (pure) what moves into a stage, then apply it to the stage's S3 bucket.

Bundles carry a pipeline's source between stages, the manifest records what is live, the lock
keeps promotions to a stage one at a time, and the sandbox emulates S3 without an account.
"""
