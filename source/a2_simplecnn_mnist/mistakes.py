"""Assignment 2's sample mistakes: the three most common ones in the lecture's network.

For `cnn-kit demo` and the end-to-end tests. Each is the reference answer with a typical mistake edited in: {sample name: {answer cell grade_id:
[(old, new), ...]}}. Every edit must apply exactly as written (a test fails when one stops applying).
"""

MISTAKES = {
    "mistake-no-padding": {
        "simplecnn_answer": [("nn.Conv2d(1, 32, kernel_size=3, padding=1)", "nn.Conv2d(1, 32, kernel_size=3)"),
                             ("nn.Conv2d(32, 64, kernel_size=3, padding=1)", "nn.Conv2d(32, 64, kernel_size=3)"),
                             ("nn.Linear(64 * 7 * 7, 128)", "nn.Linear(64 * 5 * 5, 128)")],
    },
    "mistake-flatten-32-channels": {
        "simplecnn_answer": [("nn.Linear(64 * 7 * 7, 128)", "nn.Linear(32 * 7 * 7, 128)")],
    },
    "mistake-softmax-no-zero-grad": {
        "simplecnn_answer": [("nn.Linear(128, 10),\n", "nn.Linear(128, 10),\n            nn.Softmax(dim=1),\n")],
        "train_answer": [("        optimizer.zero_grad()\n", "")],
    },
}

# What each sample scores under full grading (accuracy measured): the checks it breaks, no more.
EXPECTED_SCORES = {
    "mistake-no-padding": 13,                # features 0/2, parameters 0/2 (the classifier fits its features)
    "mistake-flatten-32-channels": 7,        # output_shape, classifier, parameters 0/2; accuracy 0/4 (no logits)
    "mistake-softmax-no-zero-grad": 10,      # logits, train_one_epoch, accuracy (97.8 %); the classifier's layers are right
}
