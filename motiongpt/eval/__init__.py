"""Evaluation: text-motion evaluator and the field's metrics (planned; see the evaluation issue)."""
