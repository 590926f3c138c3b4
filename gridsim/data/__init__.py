"""Data files shipped with gridsim (the ATT&CK for ICS technique list)."""
