"""Answers as people write them in public code, adapted to the lecture's assignments, with their verdicts.

Each case replaces whole answer cells of an assignment (grade_id → the cell a student would write) and names
the checks that must lose points; every other check keeps its full points. The verdicts come from the lecture
(/work/shared/lecture, the assignments' own wording), never from the kit's output: a correct spelling loses
nothing, a wrong answer breaks one property and loses exactly the checks of that property.

`source` says where each idiom was read (the code was written here, adapted to the lecture's network);
`why` gives the lecture's reason where a verdict is not plain full marks.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass

A1, A2 = "a1_sizes_and_params", "a2_simplecnn_mnist"
CNN, TRAIN, EVAL = "simplecnn_answer", "train_answer", "evaluate_answer"
CONV_OUT, POOL_OUT, PARAMS = "conv2d_out_answer", "pool2d_out_answer", "param_counts_answer"
KERAS, RGB, TRANSFER = "keras_models_answer", "rgb_convnet_answer", "transfer_answer"


@dataclass(frozen=True)
class Case:
    source: str                    # where the idiom comes from
    answers: dict                  # grade_id -> the whole answer cell, as a student writes it
    loses: frozenset = frozenset()  # the checks that lose points; every other keeps all of its points
    assignment: str = A2
    why: str = ""                  # the lecture's reason, where the verdict is not full marks or is a judgement

    def cells(self) -> dict:
        return {gid: textwrap.dedent(text).strip("\n") + "\n" for gid, text in self.answers.items()}


def net(source, text, loses=(), why=""):
    return Case(source, {CNN: text}, frozenset(loses), A2, why)


def train(source, text, loses=(), why=""):
    return Case(source, {TRAIN: text}, frozenset(loses), A2, why)


def evaluate(source, text, loses=(), why=""):
    return Case(source, {EVAL: text}, frozenset(loses), A2, why)


def a1(source, gid, text, loses=(), why=""):
    return Case(source, {gid: text}, frozenset(loses), A1, why)


PT_EXAMPLES = "pytorch/examples mnist/main.py"
QUICKSTART = "pytorch/tutorials beginner_source/basics/quickstart_tutorial.py"
CIFAR = "pytorch/tutorials beginner_source/blitz/cifar10_tutorial.py (Training a classifier)"
LENET = "pytorch/tutorials beginner_source/blitz/neural_networks_tutorial.py (Neural Networks)"
TORCHVISION = "pytorch/vision references/classification/train.py and utils.py"
D2L = "d2l-ai/d2l-en chapter_convolutional-neural-networks/lenet.md"
CS231N = "cs231n assignment2 PyTorch.ipynb"
KAGGLE = "Kaggle MNIST CNN notebooks (Digit Recognizer)"

# --- assignment 2: the network ---------------------------------------------------------------------------

NETWORKS = {
    "examples-net-with-dropout": net(PT_EXAMPLES, """
        import torch.nn.functional as F

        class Net(nn.Module):
            def __init__(self):
                super(Net, self).__init__()
                self.conv1 = nn.Conv2d(1, 32, 3, 1, 1)
                self.conv2 = nn.Conv2d(32, 64, 3, 1, 1)
                self.dropout1 = nn.Dropout(0.25)
                self.dropout2 = nn.Dropout(0.5)
                self.fc1 = nn.Linear(3136, 128)
                self.fc2 = nn.Linear(128, 10)

            def forward(self, x):
                x = self.conv1(x)
                x = F.relu(x)
                x = F.max_pool2d(x, 2)
                x = self.conv2(x)
                x = F.relu(x)
                x = F.max_pool2d(x, 2)
                x = self.dropout1(x)
                x = torch.flatten(x, 1)
                x = self.fc1(x)
                x = F.relu(x)
                x = self.dropout2(x)
                x = self.fc2(x)
                return x

        SimpleCNN = Net
    """, why="Dropout is off in evaluation and adds no parameters: the lecture's layers, regularised (the kit "
             "accepts it, tests/test_checks.py)"),
    "examples-net-log-softmax": net(PT_EXAMPLES, """
        import torch.nn.functional as F

        class SimpleCNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1 = nn.Conv2d(1, 32, 3, 1, 1)
                self.conv2 = nn.Conv2d(32, 64, 3, 1, 1)
                self.fc1 = nn.Linear(64 * 7 * 7, 128)
                self.fc2 = nn.Linear(128, 10)

            def forward(self, x):
                x = F.max_pool2d(F.relu(self.conv1(x)), 2)
                x = F.max_pool2d(F.relu(self.conv2(x)), 2)
                x = torch.flatten(x, 1)
                x = F.relu(self.fc1(x))
                x = self.fc2(x)
                output = F.log_softmax(x, dim=1)
                return output
    """, {"logits"}, "the lecture: 'CrossEntropyLoss expects raw logits'; the network ends with Linear(128, 10) "
                      "(pytorch/examples pairs log_softmax with nll_loss). One property, one check: the layers "
                      "before it are the lecture's, so the classifier keeps its points"),
    "cifar-tutorial-shared-pool": net(CIFAR, """
        import torch.nn.functional as F

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
                self.pool = nn.MaxPool2d(2, 2)
                self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
                self.fc1 = nn.Linear(64 * 7 * 7, 128)
                self.fc2 = nn.Linear(128, 10)

            def forward(self, x):
                x = self.pool(F.relu(self.conv1(x)))
                x = self.pool(F.relu(self.conv2(x)))
                x = x.view(-1, 64 * 7 * 7)
                x = F.relu(self.fc1(x))
                x = self.fc2(x)
                return x

        SimpleCNN = Net
    """),
    "nn-tutorial-named-steps": net(LENET, """
        import torch.nn.functional as F

        class SimpleCNN(nn.Module):
            def __init__(self):
                super(SimpleCNN, self).__init__()
                self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
                self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
                self.fc1 = nn.Linear(64 * 7 * 7, 128)
                self.fc2 = nn.Linear(128, 10)

            def forward(self, input):
                c1 = F.relu(self.conv1(input))
                s2 = F.max_pool2d(c1, (2, 2))
                c3 = F.relu(self.conv2(s2))
                s4 = F.max_pool2d(c3, 2)
                s4 = torch.flatten(s4, 1)
                f5 = F.relu(self.fc1(s4))
                output = self.fc2(f5)
                return output
    """),
    "nn-tutorial-num-flat-features": net(LENET + " (its earlier num_flat_features helper)", """
        import torch.nn.functional as F

        class SimpleCNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
                self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
                self.fc1 = nn.Linear(3136, 128)
                self.fc2 = nn.Linear(128, 10)

            def forward(self, x):
                x = F.max_pool2d(F.relu(self.conv1(x)), (2, 2))
                x = F.max_pool2d(F.relu(self.conv2(x)), 2)
                x = x.view(-1, self.num_flat_features(x))
                x = F.relu(self.fc1(x))
                return self.fc2(x)

            def num_flat_features(self, x):
                size = x.size()[1:]
                num_features = 1
                for s in size:
                    num_features *= s
                return num_features
    """),
    "quickstart-flatten-attribute": net(QUICKSTART, """
        class NeuralNetwork(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv_stack = nn.Sequential(
                    nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                )
                self.flatten = nn.Flatten()
                self.linear_relu_stack = nn.Sequential(
                    nn.Linear(64 * 7 * 7, 128),
                    nn.ReLU(),
                    nn.Linear(128, 10),
                )

            def forward(self, x):
                x = self.conv_stack(x)
                x = self.flatten(x)
                logits = self.linear_relu_stack(x)
                return logits

        SimpleCNN = NeuralNetwork
    """),
    "d2l-lazy-layers": net(D2L, """
        class SimpleCNN(nn.Module):
            def __init__(self, num_classes=10):
                super().__init__()
                self.net = nn.Sequential(
                    nn.LazyConv2d(32, kernel_size=3, padding=1), nn.ReLU(),
                    nn.MaxPool2d(kernel_size=2, stride=2),
                    nn.LazyConv2d(64, kernel_size=3, padding=1), nn.ReLU(),
                    nn.MaxPool2d(kernel_size=2, stride=2),
                    nn.Flatten(),
                    nn.LazyLinear(128), nn.ReLU(),
                    nn.LazyLinear(num_classes))

            def forward(self, X):
                return self.net(X)
    """, why="lazy modules are the same layers once materialised (the issue's nn.LazyLinear row)"),
    "d2l-average-pooling": net(D2L + " (LeNet's AvgPool2d)", """
        class SimpleCNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.features = nn.Sequential(
                    nn.Conv2d(1, 32, kernel_size=3, padding=1), nn.ReLU(),
                    nn.AvgPool2d(kernel_size=2, stride=2),
                    nn.Conv2d(32, 64, kernel_size=3, padding=1), nn.ReLU(),
                    nn.AvgPool2d(kernel_size=2, stride=2))
                self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(),
                                                nn.Linear(128, 10))

            def forward(self, x):
                return self.classifier(self.features(x))
    """, {"features"}, "the lecture pools with MaxPool2d(kernel_size=2, stride=2) ('keeps only the maximum value')"),
    "kaggle-batchnorm-after-conv": net(KAGGLE, """
        class SimpleCNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.features = nn.Sequential(
                    nn.Conv2d(1, 32, kernel_size=3, padding=1), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
                    nn.MaxPool2d(2),
                    nn.Conv2d(32, 64, kernel_size=3, padding=1), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
                    nn.MaxPool2d(2))
                self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(inplace=True),
                                                nn.Linear(128, 10))

            def forward(self, x):
                return self.classifier(self.features(x))
    """, {"features", "parameters"}, "BatchNorm is not among the lecture's layers and adds parameters: the "
                                     "features and the parameter counts differ, nothing else (issue 22)"),
    "kaggle-batchnorm1d-in-classifier": net(KAGGLE, """
        class SimpleCNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.features = nn.Sequential(
                    nn.Conv2d(1, 32, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Conv2d(32, 64, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
                self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.BatchNorm1d(128),
                                                nn.ReLU(), nn.Linear(128, 10))

            def forward(self, x):
                return self.classifier(self.features(x))
    """, {"classifier", "parameters"}, "BatchNorm1d is not among the lecture's fully connected layers and adds "
                                       "256 parameters"),
    "kaggle-add-module": net(KAGGLE, """
        class SimpleCNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.features = nn.Sequential()
                self.features.add_module("conv1", nn.Conv2d(1, 32, kernel_size=3, stride=1, padding=1))
                self.features.add_module("relu1", nn.ReLU(inplace=True))
                self.features.add_module("pool1", nn.MaxPool2d(kernel_size=2, stride=2))
                self.features.add_module("conv2", nn.Conv2d(32, 64, kernel_size=3, stride=1, padding=1))
                self.features.add_module("relu2", nn.ReLU(inplace=True))
                self.features.add_module("pool2", nn.MaxPool2d(kernel_size=2, stride=2))
                self.classifier = nn.Sequential()
                self.classifier.add_module("flatten", nn.Flatten())
                self.classifier.add_module("fc1", nn.Linear(in_features=3136, out_features=128))
                self.classifier.add_module("relu3", nn.ReLU(inplace=True))
                self.classifier.add_module("fc2", nn.Linear(in_features=128, out_features=10))

            def forward(self, x):
                x = self.features(x)
                x = self.classifier(x)
                return x
    """),
    "torchvision-identity-and-inplace": net(TORCHVISION + " (torchvision.models: nn.Identity, "
                                                          "ReLU(inplace=True), torch.flatten(x, 1))", """
        class SimpleCNN(nn.Module):
            def __init__(self, dropout: float = 0.0):
                super().__init__()
                self.features = nn.Sequential(
                    nn.Conv2d(1, 32, kernel_size=3, padding=1), nn.ReLU(inplace=True),
                    nn.MaxPool2d(kernel_size=2, stride=2),
                    nn.Conv2d(32, 64, kernel_size=3, padding=1), nn.ReLU(inplace=True),
                    nn.MaxPool2d(kernel_size=2, stride=2))
                self.classifier = nn.Sequential(
                    nn.Linear(64 * 7 * 7, 128), nn.ReLU(inplace=True),
                    nn.Dropout(p=dropout) if dropout > 0 else nn.Identity(),
                    nn.Linear(128, 10))

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                x = self.features(x)
                x = torch.flatten(x, 1)
                x = self.classifier(x)
                return x
    """),
    "cs231n-flatten-module-kaiming": net(CS231N, """
        def flatten(x):
            N = x.shape[0]
            return x.view(N, -1)

        class Flatten(nn.Module):
            def forward(self, x):
                return flatten(x)

        class SimpleCNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.model = nn.Sequential(
                    nn.Conv2d(1, 32, (3, 3), padding=(1, 1)), nn.ReLU(), nn.MaxPool2d((2, 2)),
                    nn.Conv2d(32, 64, (3, 3), padding=(1, 1)), nn.ReLU(), nn.MaxPool2d((2, 2)),
                    Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))
                for layer in self.model:
                    if isinstance(layer, (nn.Conv2d, nn.Linear)):
                        nn.init.kaiming_normal_(layer.weight)
                        nn.init.zeros_(layer.bias)

            def forward(self, x):
                return self.model(x)
    """, why="the initialisation is not the architecture: the grader trains its own rebuild"),
    "cs231n-functional-flatten-helper": net(CS231N + " (ThreeLayerConvNet's forward)", """
        import torch.nn.functional as F

        def flatten(x):
            N = x.shape[0]
            return x.view(N, -1)

        class SimpleCNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv_1 = nn.Conv2d(in_channels=1, out_channels=32, kernel_size=3, padding=1, bias=True)
                self.conv_2 = nn.Conv2d(in_channels=32, out_channels=64, kernel_size=3, padding=1, bias=True)
                self.fc = nn.Linear(64 * 7 * 7, 128)
                self.out = nn.Linear(128, 10)

            def forward(self, x):
                x = F.max_pool2d(F.relu(self.conv_1(x)), kernel_size=2, stride=2)
                x = F.max_pool2d(F.relu(self.conv_2(x)), kernel_size=2, stride=2)
                scores = self.out(F.relu(self.fc(flatten(x))))
                return scores
    """),
    "keras-translation-keywords": net("the lecture's Keras tour (001), written with every keyword", """
        class SimpleCNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.features = nn.Sequential(
                    nn.Conv2d(in_channels=1, out_channels=32, kernel_size=(3, 3), stride=(1, 1), padding="same"),
                    nn.ReLU(),
                    nn.MaxPool2d(kernel_size=(2, 2), stride=(2, 2), padding=0),
                    nn.Conv2d(in_channels=32, out_channels=64, kernel_size=(3, 3), stride=(1, 1), padding="same"),
                    nn.ReLU(),
                    nn.MaxPool2d(kernel_size=(2, 2), stride=(2, 2), padding=0))
                self.classifier = nn.Sequential(
                    nn.Flatten(start_dim=1), nn.Linear(in_features=3136, out_features=128, bias=True), nn.ReLU(),
                    nn.Linear(in_features=128, out_features=10, bias=True))

            def forward(self, x):
                x = self.features(x)
                x = self.classifier(x)
                return x
    """),
    "moduledict-named-blocks": net(KAGGLE + " (nn.ModuleDict of named blocks)", """
        class SimpleCNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.blocks = nn.ModuleDict({
                    "block1": nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)),
                    "block2": nn.Sequential(nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)),
                    "head": nn.Sequential(nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10)),
                })

            def forward(self, x):
                for name in ("block1", "block2", "head"):
                    x = self.blocks[name](x)
                return x
    """),
    # --- single mistakes of one defining argument or one layer
    "pool-3x3-stride-2-padding-1": net(TORCHVISION + " (torchvision.models.resnet's stem pooling)", """
        class SimpleCNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.features = nn.Sequential(
                    nn.Conv2d(1, 32, kernel_size=3, padding=1), nn.ReLU(),
                    nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
                    nn.Conv2d(32, 64, kernel_size=3, padding=1), nn.ReLU(),
                    nn.MaxPool2d(kernel_size=2, stride=2))
                self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(),
                                                nn.Linear(128, 10))

            def forward(self, x):
                return self.classifier(self.features(x))
    """, {"features"}, "the lecture pools with MaxPool2d(kernel_size=2, stride=2); 3×3 windows with stride 2 give "
                       "the same 14×14 but are not the lecture's layer (issue 22)"),
    "dilated-second-conv": net("torchvision.models (dilation, as in its ResNet's replace_stride_with_dilation)", """
        class SimpleCNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.features = nn.Sequential(
                    nn.Conv2d(1, 32, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Conv2d(32, 64, kernel_size=3, padding=2, dilation=2), nn.ReLU(), nn.MaxPool2d(2))
                self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))

            def forward(self, x):
                return self.classifier(self.features(x))
    """, {"features"}, "the lecture's Conv2d(32, 64, kernel_size=3, padding=1) has no dilation; same shapes and "
                       "parameters, another layer"),
    "first-conv-5x5-padding-2": net(LENET + " (5×5 kernels)", """
        class SimpleCNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.features = nn.Sequential(
                    nn.Conv2d(1, 32, kernel_size=5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Conv2d(32, 64, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
                self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))

            def forward(self, x):
                return self.classifier(self.features(x))
    """, {"features", "parameters"}, "the lecture's kernel is 3×3 ('each filter is a 3x3 sliding window'); a 5×5 "
                                     "kernel is another layer with 832 parameters, not 320"),
    "sixteen-first-channels": net(CIFAR + " (few channels)", """
        class SimpleCNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.features = nn.Sequential(
                    nn.Conv2d(1, 16, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Conv2d(16, 64, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
                self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))

            def forward(self, x):
                return self.classifier(self.features(x))
    """, {"features", "parameters"}, "the lecture's first block learns 32 filters (1 → 32 → 64 channels)"),
    "functional-missing-second-relu": net(CIFAR, """
        import torch.nn.functional as F

        class SimpleCNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
                self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
                self.pool = nn.MaxPool2d(2, 2)
                self.fc1 = nn.Linear(64 * 7 * 7, 128)
                self.fc2 = nn.Linear(128, 10)

            def forward(self, x):
                x = self.pool(F.relu(self.conv1(x)))
                x = self.pool(self.conv2(x))
                x = torch.flatten(x, 1)
                x = F.relu(self.fc1(x))
                return self.fc2(x)
    """, {"features"}, "each of the lecture's convolutions is followed by ReLU"),
    "leaky-relu-in-features": net(KAGGLE, """
        import torch.nn.functional as F

        class SimpleCNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
                self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
                self.fc1 = nn.Linear(64 * 7 * 7, 128)
                self.fc2 = nn.Linear(128, 10)

            def forward(self, x):
                x = F.max_pool2d(F.leaky_relu(self.conv1(x)), 2)
                x = F.max_pool2d(F.relu(self.conv2(x)), 2)
                x = x.view(x.size(0), -1)
                return self.fc2(F.relu(self.fc1(x)))
    """, {"features"}, "the lecture's activation is ReLU"),
    "functional-softmax-at-the-end": net(KAGGLE + " (softmax before CrossEntropyLoss)", """
        import torch.nn.functional as F

        class SimpleCNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
                self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
                self.fc1 = nn.Linear(64 * 7 * 7, 128)
                self.fc2 = nn.Linear(128, 10)

            def forward(self, x):
                x = F.max_pool2d(F.relu(self.conv1(x)), 2)
                x = F.max_pool2d(F.relu(self.conv2(x)), 2)
                x = F.relu(self.fc1(torch.flatten(x, 1)))
                return F.softmax(self.fc2(x), dim=1)
    """, {"logits"}, "the lecture: 'CrossEntropyLoss expects raw logits' (the logits check's property alone)"),
    "functional-missing-classifier-relu": net(QUICKSTART, """
        class SimpleCNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv_stack = nn.Sequential(
                    nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
                self.flatten = nn.Flatten()
                self.fc1 = nn.Linear(3136, 128)
                self.fc2 = nn.Linear(128, 10)

            def forward(self, x):
                x = self.flatten(self.conv_stack(x))
                return self.fc2(self.fc1(x))
    """, {"classifier"}, "the lecture: Linear(3136 → 128) → ReLU → Linear(128 → 10)"),
    "hidden-64": net(CIFAR + " (narrow hidden layer)", """
        class SimpleCNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.features = nn.Sequential(
                    nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
                self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(3136, 64), nn.ReLU(), nn.Linear(64, 10))

            def forward(self, x):
                return self.classifier(self.features(x))
    """, {"classifier", "parameters"}, "the lecture's hidden layer has 128 units"),
    "first-conv-without-bias": net(TORCHVISION + " (bias=False before BatchNorm, kept without it)", """
        class SimpleCNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.features = nn.Sequential(
                    nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
                self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))

            def forward(self, x):
                return self.classifier(self.features(x))
    """, {"parameters"}, "the lecture counts 320 parameters for the first convolution (288 weights + 32 biases); "
                         "a bias is not among the defining arguments the shape checks compare"),
    "examples-old-net-pool-then-relu": net(PT_EXAMPLES + " (its earlier Net: F.relu(F.max_pool2d(conv(x), 2)))", """
        import torch.nn.functional as F

        class SimpleCNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1 = nn.Conv2d(1, 32, kernel_size=3, padding=1)
                self.conv2 = nn.Conv2d(32, 64, kernel_size=3, padding=1)
                self.fc1 = nn.Linear(3136, 128)
                self.fc2 = nn.Linear(128, 10)

            def forward(self, x):
                x = F.relu(F.max_pool2d(self.conv1(x), 2))
                x = F.relu(F.max_pool2d(self.conv2(x), 2))
                x = x.view(-1, 3136)
                x = F.relu(self.fc1(x))
                x = F.dropout(x, training=self.training)
                return self.fc2(x)
    """, why="judgement call: max pooling and ReLU commute (ReLU is monotone), so pooling first computes exactly "
             "the lecture's Conv → ReLU → MaxPool, with the lecture's shapes; the grader trains the same function"),
    "examples-old-dropout2d": net(PT_EXAMPLES + " (its earlier Net: conv2_drop = nn.Dropout2d())", """
        import torch.nn.functional as F

        class SimpleCNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1 = nn.Conv2d(1, 32, kernel_size=3, padding=1)
                self.conv2 = nn.Conv2d(32, 64, kernel_size=3, padding=1)
                self.conv2_drop = nn.Dropout2d()
                self.fc1 = nn.Linear(3136, 128)
                self.fc2 = nn.Linear(128, 10)

            def forward(self, x):
                x = F.max_pool2d(F.relu(self.conv1(x)), 2)
                x = F.max_pool2d(F.relu(self.conv2_drop(self.conv2(x))), 2)
                x = x.view(-1, 3136)
                x = F.relu(self.fc1(x))
                return self.fc2(x)
    """, {"features"}, "judgement call, after issue 22 ('an extra layer (BatchNorm, Dropout2d) costs the features "
                       "check it sits in'), though the kit accepts plain Dropout anywhere"),
}

# --- assignment 2: the training loop --------------------------------------------------------------------

TRAIN_LOOPS = {
    "examples-enumerate-batch-idx": train(PT_EXAMPLES + " train()", """
        def train_one_epoch(model, loader, criterion, optimizer, device):
            model.train()
            total = 0.0
            for batch_idx, (data, target) in enumerate(loader):
                data, target = data.to(device), target.to(device)
                optimizer.zero_grad()
                output = model(data)
                loss = criterion(output, target)
                loss.backward()
                optimizer.step()
                total += loss.item()
            return total / len(loader)
    """),
    "quickstart-zero-grad-after-step": train(QUICKSTART + " train()", """
        def train_one_epoch(model, loader, criterion, optimizer, device):
            size = len(loader.dataset)
            model.train()
            losses = []
            for batch, (X, y) in enumerate(loader):
                X, y = X.to(device), y.to(device)
                pred = model(X)
                loss = criterion(pred, y)
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
                losses.append(loss.item())
            return sum(losses) / len(losses)
    """, why="zero_grad after step is the lecture's loop: the gradients are zero before every backward"),
    "torchvision-zero-grad-before-backward": train(TORCHVISION + " train_one_epoch()", """
        def train_one_epoch(model, loader, criterion, optimizer, device):
            model.train()
            running_loss, steps = 0.0, 0
            for i, (image, target) in enumerate(loader):
                image, target = image.to(device, non_blocking=True), target.to(device, non_blocking=True)
                output = model(image)
                loss = criterion(output, target)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                running_loss += loss.item()
                steps += 1
            return running_loss / steps
    """),
    "cs231n-functional-cross-entropy": train(CS231N + " train_part34()", """
        import torch.nn.functional as F

        def train_one_epoch(model, loader, criterion, optimizer, device):
            model = model.to(device=device)
            model.train()
            epoch_loss = 0.0
            for t, (x, y) in enumerate(loader):
                x = x.to(device=device, dtype=torch.float32)
                y = y.to(device=device, dtype=torch.long)
                scores = model(x)
                loss = F.cross_entropy(scores, y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                epoch_loss += loss.item()
            return epoch_loss / len(loader)
    """, why="judgement call: F.cross_entropy is the lecture's CrossEntropyLoss, though the criterion argument "
             "is ignored"),
    "model-zero-grad": train(KAGGLE, """
        def train_one_epoch(model, loader, criterion, optimizer, device):
            model.train()
            running_loss = 0.0
            n_batches = 0
            for images, labels in loader:
                images = images.to(device)
                labels = labels.to(device)
                model.zero_grad()
                outputs = model(images)
                loss = criterion(outputs, labels)
                loss.backward()
                optimizer.step()
                running_loss += loss.item()
                n_batches += 1
            return running_loss / n_batches
    """, why="model.zero_grad() clears the same gradients as optimizer.zero_grad() when the optimizer holds "
             "all of the model's parameters"),
    "cifar-tutorial-enumerate-data": train(CIFAR, """
        def train_one_epoch(model, loader, criterion, optimizer, device):
            model.train()
            running_loss = 0.0
            for i, data in enumerate(loader, 0):
                inputs, labels = data[0].to(device), data[1].to(device)
                optimizer.zero_grad()
                outputs = model(inputs)
                loss = criterion(outputs, labels)
                loss.backward()
                optimizer.step()
                running_loss += loss.item()
            return running_loss / (i + 1)
    """),
    "tensor-loss-accumulated": train(KAGGLE + " (accumulating the loss tensor)", """
        def train_one_epoch(model, loader, criterion, optimizer, device):
            model.train()
            running_loss = 0
            for inputs, labels in loader:
                inputs, labels = inputs.to(device), labels.to(device)
                optimizer.zero_grad()
                loss = criterion(model(inputs), labels)
                loss.backward()
                optimizer.step()
                running_loss += loss.detach()
            return (running_loss / len(loader)).item()
    """),
    # --- single mistakes
    "cifar-tutorial-no-model-train": train(CIFAR + " (its loop never calls net.train())", """
        def train_one_epoch(model, loader, criterion, optimizer, device):
            running_loss = 0.0
            for i, data in enumerate(loader, 0):
                inputs, labels = data
                inputs, labels = inputs.to(device), labels.to(device)
                optimizer.zero_grad()
                outputs = model(inputs)
                loss = criterion(outputs, labels)
                loss.backward()
                optimizer.step()
                running_loss += loss.item()
            return running_loss / len(loader)
    """, {"train_one_epoch"}, "the lecture's loop calls model.train() first: after evaluate the model is in "
                              "evaluation mode and its dropout would stay off"),
    "zero-grad-once-before-the-loop": train(KAGGLE, """
        def train_one_epoch(model, loader, criterion, optimizer, device):
            model.train()
            optimizer.zero_grad()
            running_loss = 0.0
            for inputs, labels in loader:
                inputs, labels = inputs.to(device), labels.to(device)
                loss = criterion(model(inputs), labels)
                loss.backward()
                optimizer.step()
                running_loss += loss.item()
            return running_loss / len(loader)
    """, {"train_one_epoch"}, "the lecture zeroes the gradients for every batch"),
    "examples-nll-loss-on-logits": train(PT_EXAMPLES + " train() (F.nll_loss)", """
        import torch.nn.functional as F

        def train_one_epoch(model, loader, criterion, optimizer, device):
            model.train()
            running_loss = 0.0
            for batch_idx, (data, target) in enumerate(loader):
                data, target = data.to(device), target.to(device)
                optimizer.zero_grad()
                output = model(data)
                loss = F.nll_loss(output, target)
                loss.backward()
                optimizer.step()
                running_loss += loss.item()
            return running_loss / len(loader)
    """, {"train_one_epoch"}, "nll_loss expects log-probabilities; the lecture's network gives logits for "
                              "CrossEntropyLoss"),
    "returns-the-sum": train(CIFAR + " (running_loss printed, not averaged)", """
        def train_one_epoch(model, loader, criterion, optimizer, device):
            model.train()
            running_loss = 0.0
            for inputs, labels in loader:
                inputs, labels = inputs.to(device), labels.to(device)
                optimizer.zero_grad()
                loss = criterion(model(inputs), labels)
                loss.backward()
                optimizer.step()
                running_loss += loss.item()
            return running_loss
    """, {"train_one_epoch"}, "the assignment returns the mean batch loss, running_loss / len(loader)"),
    "per-sample-mean-loss": train(PT_EXAMPLES + " test()'s reduction, used for training", """
        def train_one_epoch(model, loader, criterion, optimizer, device):
            model.train()
            running_loss = 0.0
            for inputs, labels in loader:
                inputs, labels = inputs.to(device), labels.to(device)
                optimizer.zero_grad()
                loss = criterion(model(inputs), labels)
                loss.backward()
                optimizer.step()
                running_loss += loss.item() * inputs.size(0)
            return running_loss / len(loader.dataset)
    """, set(), "judgement call: the assignment asks for the mean batch loss (running_loss / len(loader), "
                "as the lecture prints); the per-image mean (the transfer-learning tutorial's epoch loss) "
                "differs only in how the last, smaller batch is weighed, and the loop trains exactly as the "
                "lecture's: accepted"),
    "step-before-backward": train(KAGGLE, """
        def train_one_epoch(model, loader, criterion, optimizer, device):
            model.train()
            running_loss = 0.0
            for inputs, labels in loader:
                inputs, labels = inputs.to(device), labels.to(device)
                optimizer.zero_grad()
                loss = criterion(model(inputs), labels)
                optimizer.step()
                loss.backward()
                running_loss += loss.item()
            return running_loss / len(loader)
    """, {"train_one_epoch"}, "the lecture steps after loss.backward()"),
}

# --- assignment 2: evaluation --------------------------------------------------------------------------

EVALUATIONS = {
    "examples-pred-eq-view-as": evaluate(PT_EXAMPLES + " test()", """
        def evaluate(model, loader, device):
            model.eval()
            correct = 0
            with torch.no_grad():
                for data, target in loader:
                    data, target = data.to(device), target.to(device)
                    output = model(data)
                    pred = output.argmax(dim=1, keepdim=True)
                    correct += pred.eq(target.view_as(pred)).sum().item()
            return 100. * correct / len(loader.dataset)
    """),
    "quickstart-type-float-size": evaluate(QUICKSTART + " test()", """
        def evaluate(model, loader, device):
            size = len(loader.dataset)
            model.eval()
            correct = 0
            with torch.no_grad():
                for X, y in loader:
                    X, y = X.to(device), y.to(device)
                    pred = model(X)
                    correct += (pred.argmax(1) == y).type(torch.float).sum().item()
            correct /= size
            return 100 * correct
    """),
    "torchvision-inference-mode-topk": evaluate(TORCHVISION + " evaluate() and utils.accuracy()", """
        def evaluate(model, loader, device):
            model.eval()
            hits, seen = 0, 0
            with torch.inference_mode():
                for image, target in loader:
                    image = image.to(device, non_blocking=True)
                    target = target.to(device, non_blocking=True)
                    output = model(image)
                    _, pred = output.topk(1, 1, True, True)
                    hits += pred.t()[0].eq(target).sum().item()
                    seen += image.shape[0]
            return hits * (100.0 / seen)
    """),
    "cs231n-check-accuracy": evaluate(CS231N + " check_accuracy_part34()", """
        def evaluate(model, loader, device):
            num_correct = 0
            num_samples = 0
            model.eval()
            with torch.no_grad():
                for x, y in loader:
                    x = x.to(device=device, dtype=torch.float32)
                    y = y.to(device=device, dtype=torch.long)
                    scores = model(x)
                    _, preds = scores.max(1)
                    num_correct += (preds == y).sum()
                    num_samples += preds.size(0)
            acc = float(num_correct) / num_samples
            return 100 * acc
    """),
    "d2l-accuracy-helper": evaluate(D2L + " (evaluate_accuracy_gpu, accuracy)", """
        def accuracy(y_hat, y):
            if len(y_hat.shape) > 1 and y_hat.shape[1] > 1:
                y_hat = y_hat.argmax(axis=1)
            cmp = y_hat.type(y.dtype) == y
            return float(cmp.type(y.dtype).sum())

        def evaluate(model, loader, device=None):
            if isinstance(model, nn.Module):
                model.eval()
                if not device:
                    device = next(iter(model.parameters())).device
            metric = [0.0, 0.0]
            with torch.no_grad():
                for X, y in loader:
                    X, y = X.to(device), y.to(device)
                    metric[0] += accuracy(model(X), y)
                    metric[1] += y.numel()
            return 100 * metric[0] / metric[1]
    """),
    "rounded-two-decimals": evaluate("the lecture's print (f'{100 * correct / total:.2f}%')", """
        def evaluate(model, loader, device):
            model.eval()
            correct, total = 0, 0
            with torch.no_grad():
                for inputs, labels in loader:
                    inputs, labels = inputs.to(device), labels.to(device)
                    predicted = model(inputs).argmax(dim=1)
                    total += labels.size(0)
                    correct += (predicted == labels).sum().item()
            return round(100 * correct / total, 2)
    """, why="the lecture reports 99.11 %: two decimals are the accuracy in percent (issue 22)"),
    "no-grad-decorator-max-indices": evaluate(KAGGLE, """
        @torch.no_grad()
        def evaluate(model, loader, device):
            model.eval()
            correct = total = 0
            for images, labels in loader:
                images, labels = images.to(device), labels.to(device)
                predicted = model(images).max(1)[1]
                total += len(labels)
                correct += int((predicted == labels).sum())
            return 100.0 * correct / total
    """),
    "kaggle-tensor-percent": evaluate(KAGGLE + " (correct kept as a tensor)", """
        def evaluate(model, loader, device):
            model.eval()
            correct = 0
            total = 0
            with torch.no_grad():
                for images, labels in loader:
                    images, labels = images.to(device), labels.to(device)
                    outputs = model(images)
                    _, predicted = torch.max(outputs.data, 1)
                    total += labels.size(0)
                    correct += (predicted == labels).sum()
            return (100 * correct / total).item()
    """),
    # --- single mistakes
    "cifar-tutorial-integer-percent": evaluate(CIFAR + " (print(f'... {100 * correct // total} %'))", """
        def evaluate(model, loader, device):
            model.eval()
            correct = 0
            total = 0
            with torch.no_grad():
                for data in loader:
                    images, labels = data
                    outputs = model(images.to(device))
                    _, predicted = torch.max(outputs, 1)
                    total += labels.size(0)
                    correct += (predicted == labels.to(device)).sum().item()
            return 100 * correct // total
    """, {"evaluate"}, "judgement call: a whole percent is not the lecture's accuracy (99.11 %, two decimals); "
                       "floor division drops up to one point"),
    "quickstart-fraction": evaluate(QUICKSTART + " test() (correct /= size)", """
        def evaluate(model, loader, device):
            size = len(loader.dataset)
            model.eval()
            correct = 0
            with torch.no_grad():
                for X, y in loader:
                    pred = model(X.to(device))
                    correct += (pred.argmax(1) == y.to(device)).type(torch.float).sum().item()
            correct /= size
            return correct
    """, {"evaluate"}, "the assignment returns the accuracy in percent (100 * correct / total)"),
    "inference-mode-without-eval": evaluate(TORCHVISION + " (model.eval() left out)", """
        def evaluate(model, loader, device):
            correct = total = 0
            with torch.inference_mode():
                for inputs, labels in loader:
                    outputs = model(inputs.to(device))
                    correct += (outputs.argmax(1) == labels.to(device)).sum().item()
                    total += labels.numel()
            return 100 * correct / total
    """, {"evaluate"}, "the lecture calls model.eval() before evaluating: Dropout must be off"),
    "last-batch-only": evaluate(KAGGLE, """
        def evaluate(model, loader, device):
            model.eval()
            with torch.no_grad():
                for inputs, labels in loader:
                    outputs = model(inputs.to(device))
                    correct = (outputs.argmax(1) == labels.to(device)).sum().item()
                    total = labels.size(0)
            return 100 * correct / total
    """, {"evaluate"}, "the lecture counts the correct predictions over all batches (correct +=, total +=)"),
    "counts-batches-not-images": evaluate(KAGGLE, """
        def evaluate(model, loader, device):
            model.eval()
            correct, total = 0, 0
            with torch.no_grad():
                for inputs, labels in loader:
                    outputs = model(inputs.to(device))
                    correct += (outputs.argmax(1) == labels.to(device)).float().mean().item()
                    total += len(labels)
            return 100 * correct / total
    """, {"evaluate"}, "the lecture divides the number of correct images by the number of images"),
}

# --- assignment 1 ------------------------------------------------------------------------------------------

LECTURE_000 = "the lecture's conv2d_out helper (000), as written in public course notebooks"
ASSIGNMENT1 = {
    "conv2d-out-floor-division": a1(LECTURE_000 + " (// for the floor)", CONV_OUT, """
        def conv2d_out(h_in, w_in, k=3, s=1, p=0, d=1):
            h_out = (h_in + 2 * p - d * (k - 1) - 1) // s + 1
            w_out = (w_in + 2 * p - d * (k - 1) - 1) // s + 1
            return h_out, w_out
    """),
    "conv2d-out-int-truncation": a1("pytorch/pytorch torch/nn/modules/conv.py docstring formula, with int()",
                                    CONV_OUT, """
        def conv2d_out(h_in, w_in, k=3, s=1, p=0, d=1):
            def size(n):
                return int((n + 2 * p - d * (k - 1) - 1) / s + 1)
            return size(h_in), size(w_in)
    """, why="int() truncates toward zero, which is the floor for the non-negative sizes a layer accepts"),
    "conv2d-out-without-floor": a1(LECTURE_000 + " (the floor forgotten)", CONV_OUT, """
        def conv2d_out(h_in, w_in, k=3, s=1, p=0, d=1):
            h_out = (h_in + 2 * p - d * (k - 1) - 1) / s + 1
            w_out = (w_in + 2 * p - d * (k - 1) - 1) / s + 1
            return h_out, w_out
    """, {"conv2d_out"}, "the lecture's formula takes the floor; pool2d_out, graded with the reference's "
                         "conv2d_out, keeps its point (issue 22)"),
    "conv2d-out-without-dilation": a1("the special case d=1 of the lecture's formula", CONV_OUT, """
        def conv2d_out(h_in, w_in, k=3, s=1, p=0, d=1):
            return (h_in + 2 * p - k) // s + 1, (w_in + 2 * p - k) // s + 1
    """, {"conv2d_out"}, "the kernel spans d·(k−1)+1 pixels (lecture 003: dilation)"),
    "pool2d-out-stride-or": a1(D2L + " (pooling output size)", POOL_OUT, """
        def pool2d_out(h_in, w_in, k=2, s=None, p=0):
            s = s or k
            return (h_in + 2 * p - k) // s + 1, (w_in + 2 * p - k) // s + 1
    """),
    "pool2d-out-stride-one": a1("a pooling helper that keeps conv's default stride", POOL_OUT, """
        def pool2d_out(h_in, w_in, k=2, s=None, p=0):
            return conv2d_out(h_in, w_in, k=k, s=s if s is not None else 1, p=p)
    """, {"pool2d_out"}, "MaxPool2d's stride defaults to the kernel size (lecture: 'default = 2 for pool')"),
    "param-counts-rearranged": a1("CS231n / d2l parameter counting (weights plus biases)", PARAMS, """
        def conv2d_params(c_in, c_out, k, groups=1, bias=True):
            weights = c_out * (c_in // groups) * k * k
            return weights + (c_out if bias else 0)

        def linear_params(n_in, n_out, bias=True):
            return n_in * n_out + (n_out if bias else 0)
    """),
    "conv2d-params-ignores-groups": a1("the lecture's formula without groups (001)", PARAMS, """
        def conv2d_params(c_in, c_out, k, groups=1, bias=True):
            return (k * k * c_in + int(bias)) * c_out

        def linear_params(n_in, n_out, bias=True):
            return (n_in + int(bias)) * n_out
    """, {"conv2d_params"}, "with groups each filter sees in_channels / groups channels (lecture 003)"),
    "keras-translations-keywords": a1("the lecture's Keras tour (001), translated with keywords", KERAS, """
        def conv1d_model():
            return nn.Sequential(nn.Conv1d(in_channels=1, out_channels=32, kernel_size=3), nn.ReLU(),
                                 nn.MaxPool1d(kernel_size=2), nn.Flatten(),
                                 nn.Linear(in_features=32 * 31, out_features=1), nn.Sigmoid())

        def conv2d_valid_model():
            return nn.Sequential(nn.Conv2d(3, 32, kernel_size=(3, 3), padding="valid"), nn.ReLU(),
                                 nn.MaxPool2d(kernel_size=(2, 2)), nn.Flatten(), nn.Linear(30752, 10),
                                 nn.Softmax(dim=-1))

        def conv2d_same_model():
            return nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                 nn.Linear(32 * 32 * 32, 10), nn.Softmax(dim=1))

        def conv2d_stride2_model():
            return nn.Sequential(nn.Conv2d(3, 32, (3, 3), stride=(2, 2), padding=(1, 1)), nn.ReLU(),
                                 nn.MaxPool2d((2, 2)), nn.Flatten(), nn.Linear(8192, 10), nn.Softmax(dim=1))

        def maxpool_model():
            from collections import OrderedDict
            return nn.Sequential(OrderedDict([
                ("conv2d", nn.Conv2d(3, 32, 3)), ("relu", nn.ReLU()), ("max_pooling2d", nn.MaxPool2d(2)),
                ("conv2d_1", nn.Conv2d(32, 64, 3)), ("relu_1", nn.ReLU()), ("max_pooling2d_1", nn.MaxPool2d(2)),
                ("flatten", nn.Flatten()), ("dense", nn.Linear(64 * 14 * 14, 10)), ("softmax", nn.Softmax(dim=1))]))

        def upsampling_model():
            return nn.Sequential(nn.Conv2d(3, 32, 3), nn.ReLU(), nn.Upsample(scale_factor=2, mode="nearest"),
                                 nn.Conv2d(32, 64, 3), nn.ReLU(), nn.Flatten(), nn.Linear(64 * 58 * 58, 10),
                                 nn.Softmax(dim=1))

        def gap_model():
            return nn.Sequential(nn.Conv2d(3, 32, 3), nn.ReLU(), nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
                                 nn.Linear(32, 10), nn.Softmax(dim=1))
    """),
    "keras-upsampling-nearest-and-modules": a1("torch.nn's UpsamplingNearest2d; Keras-style model classes",
                                               KERAS, """
        import torch.nn.functional as F

        def conv1d_model():
            return nn.Sequential(nn.Conv1d(1, 32, 3), nn.ReLU(), nn.MaxPool1d(2), nn.Flatten(),
                                 nn.Linear(992, 1), nn.Sigmoid())

        def conv2d_valid_model():
            return nn.Sequential(nn.Conv2d(3, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                 nn.Linear(32 * 31 * 31, 10), nn.Softmax(dim=1))

        def conv2d_same_model():
            return nn.Sequential(nn.Conv2d(3, 32, 3, padding="same"), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                 nn.Linear(32 * 32 * 32, 10), nn.Softmax(dim=1))

        def conv2d_stride2_model():
            return nn.Sequential(nn.Conv2d(3, 32, 3, stride=2, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                 nn.Flatten(), nn.Linear(32 * 16 * 16, 10), nn.Softmax(dim=1))

        class MaxPoolNet(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1, self.conv2 = nn.Conv2d(3, 32, 3), nn.Conv2d(32, 64, 3)
                self.dense = nn.Linear(64 * 14 * 14, 10)

            def forward(self, x):
                x = F.max_pool2d(F.relu(self.conv1(x)), 2)
                x = F.max_pool2d(F.relu(self.conv2(x)), 2)
                return F.softmax(self.dense(torch.flatten(x, 1)), dim=1)

        def maxpool_model():
            return MaxPoolNet()

        def upsampling_model():
            return nn.Sequential(nn.Conv2d(3, 32, 3), nn.ReLU(), nn.UpsamplingNearest2d(scale_factor=2),
                                 nn.Conv2d(32, 64, 3), nn.ReLU(),
                                 nn.Flatten(), nn.Linear(64 * 58 * 58, 10), nn.Softmax(dim=1))

        class GAPNet(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 32, 3)
                self.dense = nn.Linear(32, 10)

            def forward(self, x):
                x = F.relu(self.conv(x))
                x = F.adaptive_avg_pool2d(x, (1, 1)).flatten(1)
                return F.softmax(self.dense(x), dim=1)

        def gap_model():
            return GAPNet()
    """, why="UpsamplingNearest2d is torch's layer for UpSampling2D; F.softmax is Dense(10, softmax) (issue 22)"),
    "keras-interpolate-functional": a1("Keras' UpSampling2D and GlobalAveragePooling2D as tensor operations",
                                     KERAS, """
        import torch.nn.functional as F

        def conv1d_model():
            return nn.Sequential(nn.Conv1d(1, 32, 3), nn.ReLU(), nn.MaxPool1d(2), nn.Flatten(),
                                 nn.Linear(992, 1), nn.Sigmoid())

        def conv2d_valid_model():
            return nn.Sequential(nn.Conv2d(3, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                 nn.Linear(32 * 31 * 31, 10), nn.Softmax(dim=1))

        def conv2d_same_model():
            return nn.Sequential(nn.Conv2d(3, 32, 3, padding="same"), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                 nn.Linear(32 * 32 * 32, 10), nn.Softmax(dim=1))

        def conv2d_stride2_model():
            return nn.Sequential(nn.Conv2d(3, 32, 3, stride=2, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                 nn.Flatten(), nn.Linear(32 * 16 * 16, 10), nn.Softmax(dim=1))

        def maxpool_model():
            return nn.Sequential(nn.Conv2d(3, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
                                 nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                                 nn.Flatten(), nn.Linear(64 * 14 * 14, 10), nn.Softmax(dim=1))

        class Up(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1, self.conv2 = nn.Conv2d(3, 32, 3), nn.Conv2d(32, 64, 3)
                self.dense = nn.Linear(64 * 58 * 58, 10)

            def forward(self, x):
                x = F.interpolate(torch.relu(self.conv1(x)), scale_factor=2, mode="nearest")
                x = torch.relu(self.conv2(x))
                return torch.softmax(self.dense(x.flatten(1)), dim=1)

        def upsampling_model():
            return Up()

        def gap_model():
            return nn.Sequential(nn.Conv2d(3, 32, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(output_size=1),
                                 nn.Flatten(), nn.Linear(32, 10), nn.Softmax(dim=1))
    """, why="F.interpolate(scale_factor=2, mode='nearest') is UpSampling2D((2, 2)) (issue 22)"),
    "keras-same-without-padding": a1("the lecture's Keras tour (001), padding='same' forgotten", KERAS, """
        def conv1d_model():
            return nn.Sequential(nn.Conv1d(1, 32, 3), nn.ReLU(), nn.MaxPool1d(2), nn.Flatten(),
                                 nn.Linear(32 * 31, 1), nn.Sigmoid())

        def conv2d_valid_model():
            return nn.Sequential(nn.Conv2d(3, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                 nn.Linear(32 * 31 * 31, 10), nn.Softmax(dim=1))

        def conv2d_same_model():
            return nn.Sequential(nn.Conv2d(3, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                 nn.Linear(32 * 31 * 31, 10), nn.Softmax(dim=1))

        def conv2d_stride2_model():
            return nn.Sequential(nn.Conv2d(3, 32, 3, stride=2, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                 nn.Flatten(), nn.Linear(32 * 16 * 16, 10), nn.Softmax(dim=1))

        def maxpool_model():
            return nn.Sequential(nn.Conv2d(3, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
                                 nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                                 nn.Flatten(), nn.Linear(64 * 14 * 14, 10), nn.Softmax(dim=1))

        def upsampling_model():
            return nn.Sequential(nn.Conv2d(3, 32, 3), nn.ReLU(), nn.Upsample(scale_factor=2),
                                 nn.Conv2d(32, 64, 3), nn.ReLU(),
                                 nn.Flatten(), nn.Linear(64 * 58 * 58, 10), nn.Softmax(dim=1))

        def gap_model():
            return nn.Sequential(nn.Conv2d(3, 32, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                 nn.Linear(32, 10), nn.Softmax(dim=1))
    """, {"conv2d_same_model"}, "padding='same' keeps 64×64 (lecture 001: 328,586 parameters, not 308,426)"),
    "rgb-convnet-tutorial-keywords": a1(CIFAR + " (the lecture's ConvNet for 3×32×32)", RGB, """
        def rgb_convnet():
            layers = [
                nn.Conv2d(in_channels=3, out_channels=16, kernel_size=(3, 3), padding="same"),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2, 2),
                nn.Conv2d(in_channels=16, out_channels=32, kernel_size=(3, 3), padding="same"),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2, 2),
                nn.Flatten(),
                nn.Linear(in_features=2048, out_features=10),
            ]
            return nn.Sequential(*layers)
    """),
    "rgb-convnet-pool-stride-one": a1(CIFAR + " (pooling stride 1)", RGB, """
        def rgb_convnet():
            return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, stride=1),
                                 nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, stride=1),
                                 nn.Flatten(), nn.Linear(32 * 30 * 30, 10))
    """, {"rgb_convnet"}, "the lecture's MaxPool2d(2, 2) halves 32×32 to 16×16, then 8×8"),
    "transfer-requires-grad-underscore": a1("pytorch/tutorials beginner_source/finetuning_torchvision_models "
                                            "(set_parameter_requires_grad)", TRANSFER, """
        def build_transfer_model(features, num_classes):
            features.requires_grad_(False)
            head = nn.Sequential(
                nn.AdaptiveAvgPool2d((1, 1)),
                nn.Flatten(1),
                nn.Linear(in_features=64, out_features=256),
                nn.ReLU(inplace=True),
                nn.Dropout(p=0.5),
                nn.Linear(256, num_classes))
            return nn.Sequential(features, head)

        def count_trainable(model):
            return sum(p.numel() for p in filter(lambda p: p.requires_grad, model.parameters()))
    """),
    "transfer-named-parameters": a1("pytorch/tutorials beginner_source/transfer_learning_tutorial.py", TRANSFER, """
        from collections import OrderedDict

        def build_transfer_model(features, num_classes):
            for name, param in features.named_parameters():
                param.requires_grad = False
            return nn.Sequential(OrderedDict([
                ("base", features),
                ("head", nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 256), nn.ReLU(),
                                       nn.Dropout(0.5), nn.Linear(256, num_classes)))]))

        def count_trainable(model):
            total = 0
            for p in model.parameters():
                if p.requires_grad:
                    total += p.numel()
            return total
    """),
    "transfer-forgot-to-freeze": a1("pytorch/tutorials transfer_learning_tutorial.py (fine-tuning, not a frozen base)",
                                    TRANSFER, """
        def build_transfer_model(features, num_classes):
            head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 256), nn.ReLU(),
                                 nn.Dropout(0.5), nn.Linear(256, num_classes))
            return nn.Sequential(features, head)

        def count_trainable(model):
            return sum(p.numel() for p in model.parameters() if p.requires_grad)
    """, {"transfer_frozen"}, "the lecture freezes the base (layer.trainable = False); the head itself is right "
                              "(issue 22: one mistake, not two)"),
    "count-trainable-counts-all": a1("torchinfo-style 'Total params'", TRANSFER, """
        def build_transfer_model(features, num_classes):
            for parameter in features.parameters():
                parameter.requires_grad = False
            head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 256), nn.ReLU(),
                                 nn.Dropout(0.5), nn.Linear(256, num_classes))
            return nn.Sequential(features, head)

        def count_trainable(model):
            return sum(p.numel() for p in model.parameters())
    """, {"count_trainable"}, "only the parameters with requires_grad train (lecture 001: 'Trainable params')"),
}

CASES: dict[str, Case] = {**NETWORKS, **TRAIN_LOOPS, **EVALUATIONS, **ASSIGNMENT1}
