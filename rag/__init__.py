"""rag — ask a podcast interview questions; answers cite where in the conversation they come from."""
