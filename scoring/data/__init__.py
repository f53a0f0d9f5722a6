"""Data access of the scoring runtime: the column contract (:mod:`.schema`), table files and
the one atomic writer (:mod:`.files`), the extract folder format (:mod:`.extract_folder`) and
every SQL statement (:mod:`.db`)."""
