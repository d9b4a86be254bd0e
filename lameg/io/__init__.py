"""File formats: SPM M/EEG datasets, FreeSurfer, GIfTI and MNE-Python interoperability."""
