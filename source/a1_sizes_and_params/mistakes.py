"""Assignment 1's sample mistakes.

For `cnn-kit demo` and the end-to-end tests. Each is the reference answer with a typical mistake edited in: {sample name: {answer cell grade_id:
[(old, new), ...]}}. Every edit must apply exactly as written (a test fails when one stops applying).
"""

MISTAKES = {
    "mistake-no-dilation-same-padding": {
        "conv2d_out_answer": [("d * (k - 1) - 1", "k")] * 2,
        "keras_models_answer": [('nn.Conv2d(3, 32, 3, padding="same")', "nn.Conv2d(3, 32, 3)")],
    },
    "mistake-groups-unfrozen": {
        "param_counts_answer": [("(k * k * (c_in // groups) + (1 if bias else 0)) * c_out",
                                 "k * k * c_in * c_out + c_out")],
        "transfer_answer": [("        parameter.requires_grad = False\n", "        pass\n")],
    },
}

# What each sample scores under full grading (accuracy measured): the checks it breaks, no more.
EXPECTED_SCORES = {
    "mistake-no-dilation-same-padding": 15,  # conv2d_out partial (1 of 2), conv2d_same_model 0/1
    "mistake-groups-unfrozen": 14,           # conv2d_params 0/2, transfer_frozen 0/1 (the head is judged on its own)
}
