"""Many episodes in one index: where their transcripts come from and what each one is.

    sources.py   folders and .tar.gz / .zip archives of transcripts, read member by member
    shows.py     the Changelog shows: an episode id's show, its name and its page link
"""
