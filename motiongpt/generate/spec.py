"""What one generated output must satisfy (:class:`RowSpec`); pure Python, no torch import, so
that requests can be validated before the heavy imports. Enforced by
:class:`motiongpt.generate.constraints.MotionConstraintProcessor`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["RowSpec"]


@dataclass(frozen=True)
class RowSpec:
    """What one generated output must satisfy (one request after validation)."""

    kind: Literal["motion", "text"] = "motion"
    """``motion``: a motion span; ``text``: a caption (``m2t``)."""
    exact: int | None = None
    """Exact number of codes to generate; None: between ``min_len`` and ``max_len``."""
    min_len: int = 1
    """Fewest codes when ``exact`` is None."""
    max_len: int = 49
    """Most codes when ``exact`` is None (also the size of the tables when ``exact`` is given)."""
    targets: tuple[tuple[int, int], ...] = ()
    """``(position, code)`` pairs: the code forced at that 0-based position of the generated span."""
    ordered_keys: tuple[int, ...] = ()
    """Codes that must appear in this order (as a subsequence) anywhere in the span."""
    end_code: int | None = None
    """Code the span must end with (variable length: stopping is only allowed right after it)."""
    text_budget: int = 64
    """Text rows: most new tokens, EOS included."""

    def validate(self, nb_code: int) -> None:
        """Raise ``ValueError`` for an unsatisfiable or malformed spec."""
        if self.kind not in ("motion", "text"):
            raise ValueError(f"RowSpec.kind must be 'motion' or 'text', got {self.kind!r}")
        if self.kind == "text":
            if self.text_budget < 2:
                raise ValueError(f"RowSpec.text_budget must be >= 2 (one token + EOS), got {self.text_budget}")
            return
        cap = self.exact if self.exact is not None else self.max_len
        if self.exact is not None and self.exact < 1:
            raise ValueError(f"RowSpec.exact must be >= 1, got {self.exact}")
        if self.exact is None and not 1 <= self.min_len <= self.max_len:
            raise ValueError(f"RowSpec needs 1 <= min_len <= max_len, got {self.min_len}/{self.max_len}")
        last = -1
        for pos, code in self.targets:
            if not last < pos < cap:
                raise ValueError(f"RowSpec.targets: position {pos} must be increasing and < {cap}")
            last = pos
        codes = [c for _, c in self.targets] + list(self.ordered_keys)
        if self.end_code is not None:
            codes.append(self.end_code)
        bad = [c for c in codes if not 0 <= c < nb_code]
        if bad:
            raise ValueError(f"RowSpec: code(s) {bad} out of range [0,{nb_code})")
        if len(self.ordered_keys) > cap:
            raise ValueError(f"RowSpec: {len(self.ordered_keys)} ordered keys do not fit in {cap} codes")
        if self.ordered_keys and self.targets:
            raise ValueError("RowSpec: ordered_keys and targets cannot be combined")
