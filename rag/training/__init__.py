"""Training the retriever on the Changelog catalog: mine pairs, tune MiniLM with LoRA, export.

    data.py     mine (host question -> guest answer) pairs from the archive, split by episode
    lora.py     LoRA on MiniLM's linears (torch), merge into plain weights (NumPy), the adapter file
    train.py    the seeded, resumable training loop (``rag train``) and the mined benchmark
    bench.py    within-episode retrieval on mined validation questions: hit@1, hit@5, MRR

Only ``rag train`` and the benchmark import torch; merging an adapter at run time is NumPy only.
"""
