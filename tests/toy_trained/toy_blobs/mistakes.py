MISTAKES = {"mistake-nine-scores": {"blob_net_answer": [("nn.Linear(64, 10)", "nn.Linear(64, 9)")]}}
EXPECTED_SCORES = {"mistake-nine-scores": 0}   # the layers differ, and a network without 10 scores is not trained
