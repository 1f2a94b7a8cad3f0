"""Known bug patterns: rule detectors with fixes, matching against known bug-fix pairs, and the
SStuB-style classifier that names what a single-statement fix changed."""

from hotfix_engine.patterns.catalogue import Catalogue
from hotfix_engine.patterns.classify import CATEGORIES, classify_pair
from hotfix_engine.patterns.matcher import PairIndex, PatternMatch
from hotfix_engine.patterns.rules.framework import Finding, Rule, all_rules, scan_source

__all__ = [
    "CATEGORIES",
    "Catalogue",
    "Finding",
    "PairIndex",
    "PatternMatch",
    "Rule",
    "all_rules",
    "classify_pair",
    "scan_source",
]
