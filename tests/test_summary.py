"""Layer tables (§3.2) from shapes alone: the course's AlexNet table, row by row."""

from functools import partial

import jax.numpy as jnp
import pytest

from dlcourse._types import Layer
from dlcourse.layers import (
    Conv,
    Dense,
    Flatten,
    MaxPool,
    ShapeError,
    abstract_init,
    combinator_init,
    name_children,
    parallel,
    param_count,
    residual,
    serial,
)
from dlcourse.layers.summary import format_summary, summary
from dlcourse.nets import alexnet, googlenet, lenet5, resnet18

# The course's table (§3.2): name, output shape, filters, kernel, stride, padding (the
# hyper-parameters as the constructors got them: a square kernel k is the int k).
COURSE_ALEXNET = [
    ("conv1", (55, 55, 96), 96, 11, 4, 0),
    ("pool1", (27, 27, 96), None, 3, 2, 0),
    ("conv2", (27, 27, 256), 256, 5, 1, 2),
    ("pool2", (13, 13, 256), None, 3, 2, 0),
    ("conv3", (13, 13, 384), 384, 3, 1, 1),
    ("conv4", (13, 13, 384), 384, 3, 1, 1),
    ("conv5", (13, 13, 256), 256, 3, 1, 1),
    ("pool3", (6, 6, 256), None, 3, 2, 0),
    ("fc1", (4096,), 4096, None, None, None),
    ("fc2", (4096,), 4096, None, None, None),
    ("fc3", (1000,), 1000, None, None, None),
]

# (k k C_i + 1) C_o for the convolutions, (N_in + 1) N_out for the dense layers, by hand.
ALEXNET_PARAMS = {
    "conv1": (11 * 11 * 3 + 1) * 96,  # 34,944
    "conv2": (5 * 5 * 96 + 1) * 256,  # 614,656
    "conv3": (3 * 3 * 256 + 1) * 384,  # 885,120
    "conv4": (3 * 3 * 384 + 1) * 384,  # 1,327,488
    "conv5": (3 * 3 * 384 + 1) * 256,  # 884,992
    "fc1": (6 * 6 * 256 + 1) * 4096,  # 37,752,832
    "fc2": (4096 + 1) * 4096,  # 16,781,312
    "fc3": (4096 + 1) * 1000,  # 4,097,000
}


def test_alexnet_summary_is_the_course_table():
    rows = summary(alexnet(), (227, 227, 3))
    table = [r for r in rows if r["kind"] in ("conv", "max_pool", "dense")]
    got = [(r["name"], r["output_shape"], r["filters"], r["kernel"], r["stride"], r["padding"])
           for r in table]
    assert got == COURSE_ALEXNET
    assert {r["name"]: r["params"] for r in table if r["params"]} == ALEXNET_PARAMS
    assert sum(ALEXNET_PARAMS.values()) == 62_378_344
    assert sum(r["params"] for r in rows) == 62_378_344
    # The rows in between carry no parameters: flatten to 9,216, then dropout.
    others = [(r["name"], r["output_shape"], r["params"]) for r in rows if r not in table]
    assert others == [("flatten", (9216,), 0), ("dropout1", (4096,), 0),
                      ("dropout2", (4096,), 0)]


def test_format_summary_aligned_with_total():
    text = format_summary(summary(alexnet(), (227, 227, 3)))
    lines = text.splitlines()
    assert lines[0].split() == ["name", "kind", "output", "filters", "kernel", "stride",
                                "padding", "params"]
    assert lines[1].split() == ["conv1", "conv", "55×55×96", "96", "11×11", "4", "0", "34,944"]
    assert lines[-1] == "Total parameters: 62,378,344"
    # Aligned: every row's params column ends at the same place.
    assert len({len(line) for line in lines[1:-1] if line.endswith(("0", "2", "4", "6", "8"))
                }) == 1


def test_lenet5_summary_total():
    rows = summary(lenet5(), (32, 32, 1))
    assert [r["output_shape"] for r in rows if r["kind"] in ("conv", "max_pool")] == [
        (28, 28, 6), (14, 14, 6), (10, 10, 16), (5, 5, 16)]
    assert sum(r["params"] for r in rows) == 61_706
    assert format_summary(rows).splitlines()[-1] == "Total parameters: 61,706"


def test_summary_walks_combinators_with_dotted_names():
    net = serial(
        ("stem", Conv(4, 3, padding=1)),
        ("mixed", parallel(("a", Conv(2, 1)), ("b", serial(Conv(3, 1), MaxPool(3, 1, 1))))),
        ("res", residual(Conv(5, 1), Conv(5, 1))),
        Flatten(),
        Dense(3),
    )
    rows = summary(net, (6, 6, 1))
    assert [(r["name"], r["output_shape"]) for r in rows] == [
        ("stem", (6, 6, 4)),
        ("mixed.a", (6, 6, 2)),
        ("mixed.b.conv1", (6, 6, 3)),
        ("mixed.b.pool1", (6, 6, 3)),
        ("res.main", (6, 6, 5)),
        ("res.shortcut", (6, 6, 5)),
        ("flatten1", (180,)),
        ("fc1", (3,)),
    ]


def test_summary_raises_the_layer_error():
    net = serial(Conv(4, 3), ("mixed", parallel(("a", Conv(2, 1)), ("b", Conv(2, 3)))))
    with pytest.raises(ShapeError, match=r"layer 'mixed' \(parallel\).*a: \(3, 3, 2\)"):
        summary(net, (5, 5, 1))
    with pytest.raises(ShapeError, match=r"layer 'deep.conv1' \(Conv\)"):
        summary(serial(("deep", serial(Conv(2, 9)))), (5, 5, 1))


@pytest.mark.parametrize(
    ("make", "shape"),
    [(resnet18, (224, 224, 3)), (lambda: googlenet(aux_logits=True), (224, 224, 3))],
)
def test_summary_total_equals_param_count(make, shape):
    net = make()
    assert sum(r["params"] for r in summary(net, shape)) == param_count(
        abstract_init(net, shape)[1])


# --- a combinator summary.py has never heard of ---------------------------------------------


def _stack_rule(input_shape, visit, *, children):
    # Every branch reads the input; their outputs are stacked on a new leading axis.
    shapes = [visit(name, layer, input_shape) for name, layer in children]
    if len(set(shapes)) != 1:
        raise ShapeError(f"branches must agree, got {shapes}.", kind="stack")
    return (len(shapes), *shapes[0])


def _stack_apply(params, state, x, *, key=None, train=False, children):
    ys = [layer.apply(params.get(name, {}), state.get(name, {}), x, train=train)[0]
          for name, layer in children]
    return jnp.stack(ys, axis=1), state


def stack(*branches):
    """A user-defined combinator: ``(B, ...) -> (B, n_branches, ...)``."""
    children = name_children("stack", branches, default_prefix="branch")
    rule = partial(_stack_rule, children=children)
    return Layer(combinator_init(children, rule), partial(_stack_apply, children=children),
                 {"kind": "stack", "children": children, "shape_rule": rule})


def test_summary_of_a_user_defined_combinator(key):
    net = serial(Conv(2, 1), ("st", stack(Conv(3, 1), Conv(3, 3, padding=1))), Flatten(),
                 Dense(4))
    rows = summary(net, (4, 4, 1))
    assert [(r["name"], r["kind"], r["output_shape"], r["params"]) for r in rows] == [
        ("conv1", "conv", (4, 4, 2), (1 * 1 * 1 + 1) * 2),
        ("st.branch1", "conv", (4, 4, 3), (1 * 1 * 2 + 1) * 3),
        ("st.branch2", "conv", (4, 4, 3), (3 * 3 * 2 + 1) * 3),
        ("flatten1", "flatten", (2 * 4 * 4 * 3,), 0),  # the stack's rule: (2, 4, 4, 3)
        ("fc1", "dense", (4,), (96 + 1) * 4),
    ]
    # init reads the same rule, and apply agrees with it.
    out, params, state = net.init(key, (4, 4, 1))
    assert out == (4,) and set(params["st"]) == {"branch1", "branch2"}
    assert sum(r["params"] for r in rows) == param_count(params)
    y, _ = net.apply(params, state, jnp.ones((2, 4, 4, 1)))
    assert y.shape == (2, 4)
    # Its shape errors are named by path, as the built-in combinators' are.
    bad = serial(("st", stack(Conv(3, 1), Conv(3, 3))))
    with pytest.raises(ShapeError, match=r"layer 'st' \(stack\): branches must agree"):
        summary(bad, (4, 4, 1))
    with pytest.raises(ShapeError, match=r"layer 'st' \(stack\)"):
        bad.init(key, (4, 4, 1))


# --- the cost of a layer: multiply-adds and depth --------------------------------------------

# H_o W_o C_o · k k C_i for the convolutions, N_out N_in for the dense layers, by hand.
ALEXNET_MACS = {
    "conv1": 55 * 55 * 96 * (11 * 11 * 3),  # 105,415,200
    "conv2": 27 * 27 * 256 * (5 * 5 * 96),  # 447,897,600
    "conv3": 13 * 13 * 384 * (3 * 3 * 256),  # 149,520,384
    "conv4": 13 * 13 * 384 * (3 * 3 * 384),  # 224,280,576
    "conv5": 13 * 13 * 256 * (3 * 3 * 384),  # 149,520,384
    "fc1": 9216 * 4096,
    "fc2": 4096 * 4096,
    "fc3": 4096 * 1000,
}


def test_alexnet_macs_by_hand():
    rows = summary(alexnet(), (227, 227, 3))
    assert {r["name"]: r["macs"] for r in rows if r["macs"]} == ALEXNET_MACS
    assert sum(r["macs"] for r in rows) == sum(ALEXNET_MACS.values()) == 1_135_256_096
    # Pooling, flatten and dropout multiply nothing; the depth counts the 8 weight layers.
    assert {r["name"] for r in rows if r["macs"] == 0} == {
        "pool1", "pool2", "pool3", "flatten", "dropout1", "dropout2"}
    assert [r["depth"] for r in rows if r["kind"] in ("conv", "dense")] == list(range(1, 9))


def test_macs_of_grouped_and_1d_convolutions():
    # Two groups halve the multiply-adds of a layer; a 1-D layer: L_o C_o · k C_i.
    plain, grouped = (summary(Conv(8, 3, groups=g), (6, 6, 4))[0]["macs"] for g in (1, 2))
    assert plain == 4 * 4 * 8 * (3 * 3 * 4) and grouped == plain // 2
    assert summary(Conv(5, 3), (10, 2))[0]["macs"] == 8 * 5 * (3 * 2)


def test_depth_is_the_longest_path_of_weight_layers():
    net = serial(
        ("stem", Conv(4, 3, padding=1)),
        ("mixed", parallel(("a", Conv(2, 1)), ("b", serial(Conv(3, 1), Conv(3, 1),
                                                              MaxPool(3, 1, 1))))),
        ("res", residual(Conv(5, 1), Conv(5, 1))),
        Flatten(),
        Dense(3),
    )
    depth = {r["name"]: r["depth"] for r in summary(net, (6, 6, 1))}
    assert depth == {"stem": 1, "mixed.a": 2, "mixed.b.conv1": 2, "mixed.b.conv2": 3,
                     "mixed.b.pool1": 3, "res.main": 4, "res.shortcut": 4, "flatten1": 4,
                     "fc1": 5}


@pytest.mark.parametrize(("make", "shape", "depth"), [
    (alexnet, (227, 227, 3), 8),
    (lenet5, (32, 32, 1), 5),
    (resnet18, (224, 224, 3), 18),  # the 1×1 projection shortcuts run beside two 3×3s
    (googlenet, (224, 224, 3), 22),  # "22 layers deep when counting only layers with
])                                   # parameters" (Szegedy et al. 2014, §5)
def test_depth_of_the_papers(make, shape, depth):
    assert max(r["depth"] for r in summary(make(), shape)) == depth


# Published forward multiply-adds per image (10⁹); the tolerance is the rounding of the
# published figure, wider for GoogLeNet's "1.5 billion" (§5 of the paper; ours is 1.583).
@pytest.mark.parametrize(("name", "published", "rtol"), [
    ("alexnet_grouped", 0.72, 0.01),  # Krizhevsky et al.'s two GPUs; torchvision's 0.71
    ("vgg16", 15.5, 0.01),
    ("resnet50", 4.1, 0.01),  # torchvision's ResNet-50 (stride on the 3×3): 4.09
    ("googlenet", 1.5, 0.06),
])
def test_macs_match_published(name, published, rtol):
    from dlcourse.nets import resnet50, vgg16

    make, shape = {"alexnet_grouped": (partial(alexnet, grouped=True), (227, 227, 3)),
                   "vgg16": (vgg16, (224, 224, 3)), "resnet50": (resnet50, (224, 224, 3)),
                   "googlenet": (googlenet, (224, 224, 3))}[name]
    macs = sum(r["macs"] for r in summary(make(), shape)) / 1e9
    assert macs == pytest.approx(published, rel=rtol)
