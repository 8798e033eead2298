# SPDX-License-Identifier: GPL-3.0-or-later
"""pdmd's version (written on every card and document it creates)."""

__version__ = "0.1.0"
