"""Stage 1 data at scale: a mid-training corpus in VT Code's tool format (docs/CORPUS.md).

``sources`` collects records (commit packs, GitHub packs, the bank, the warehouse's curated
rollouts); ``vtforge.vtcode.render`` turns each into a VT Code transcript (the one renderer, shared
with the SFT export ``trl/sft_vtcode.parquet``); ``filters``,
``decontaminate`` and ``dedup`` are datatrove steps that drop documents and count every removal by
reason; ``pack`` tokenises, upsamples and packs fixed-length Parquet shards; ``executors`` runs the
stages on datatrove's local or Ray executor; ``manifest`` records and checks what was built;
``build`` ties them together for ``vtforge corpus build`` and the Dagster asset.
"""
