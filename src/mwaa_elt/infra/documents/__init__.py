"""The infra's pure core: documents and settings as pure functions of the stage (IAM policies,
guardrail rules, environment files, monitoring, the release pipeline). No Pulumi here: the
components in `mwaa_elt.infra` wire these documents to resources, and the CLI, the promotion and
the policy pack read them directly."""
