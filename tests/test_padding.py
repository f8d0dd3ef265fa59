"""Padding and output-size arithmetic of convolution and pooling (§3.1)."""

import pytest
from jax import lax

from dlcourse import _padding as P

# --- sizes (the course's AlexNet numbers) -----------------------------------------------


@pytest.mark.parametrize(
    "size, kernel, stride, padding, expected",
    [
        (227, 11, 4, 0, 55),  # AlexNet conv1
        (27, 5, 1, 2, 27),  # conv2
        (13, 3, 1, 1, 13),  # conv3-5
        (8, 3, 2, 0, 3),  # (8 - 3) / 2 = 2.5: the floor drops the last row
        (5, 3, 1, (0, 2), 5),  # asymmetric (lo, hi)
    ],
)
def test_conv_output_size_course_numbers(size, kernel, stride, padding, expected):
    assert P.conv_output_size(size, kernel, stride, padding) == expected


def test_pool_output_size_alexnet_overlapping_pool():
    assert P.pool_output_size(55, 3, 2, 0) == 27
    assert P.pool_output_size(28, 2) == 14  # stride defaults to the window


def test_conv_output_size_kernel_larger_than_padded_input_raises():
    with pytest.raises(ValueError, match=r"kernel=7 is larger than the padded input.*6"):
        P.conv_output_size(4, 7, 1, 1)
    with pytest.raises(ValueError, match="stride must be a positive int"):
        P.conv_output_size(8, 3, 0)
    with pytest.raises(ValueError, match="kernel must be a positive int"):
        P.conv_output_size(8, -1)


def test_conv_output_size_bad_padding_raises():
    for padding in (-1, (1, 2, 3), "SAME", 1.5):
        with pytest.raises(ValueError, match="padding must be a non-negative int or a"):
            P.conv_output_size(8, 3, 1, padding)


@pytest.mark.parametrize(
    "padding, size, kernel, stride, expected",
    [
        ("SAME", (7,), (3,), (2,), ((1, 1),)),
        ("same", (8,), (3,), (2,), ((0, 1),)),  # the odd zero on the high side
        ("SAME", (7, 8), (3, 3), (1, 3), ((1, 1), (0, 1))),
        ("VALID", (7, 7), (3, 3), (1, 1), ((0, 0), (0, 0))),
        (2, (7, 7), (3, 3), (1, 1), ((2, 2), (2, 2))),
        ((1, 2), (7, 7), (3, 3), (1, 1), ((1, 1), (2, 2))),  # (p_h, p_w)
        (((1, 2),), (7,), (3,), (1,), ((1, 2),)),
        ((2,), (7,), (3,), (1,), ((2, 2),)),  # one int per axis, 1-D
        ([[1, 0], [0, 2]], (7, 7), (3, 3), (1, 1), ((1, 0), (0, 2))),  # lists, as from JSON
    ],
)
def test_resolve_padding(padding, size, kernel, stride, expected):
    assert P.resolve_padding(padding, size, kernel, stride) == expected
    if isinstance(padding, str):  # the same pads as XLA's own SAME/VALID
        assert expected == tuple(lax.padtype_to_pads(size, kernel, stride, padding.upper()))


def test_check_window_fits():
    assert P.check_window_fits("f", (1, 4, 4, 3), (5, 5), ((1, 0), (0, 1)), "window") == (4, 4)
    with pytest.raises(ValueError, match=r"f: window \(5, 5\) is larger than the padded.*\(5, 4\)"):
        P.check_window_fits("f", (1, 4, 4, 3), (5, 5), ((1, 0), (0, 0)), "window")


# --- every error names the function and the argument ------------------------------------

ERRORS = [
    # (call, function named, argument named in the message)
    (lambda: P.resolve_padding("full", (7,), (3,), (1,)), "resolve_padding", "padding='full'"),
    (lambda: P.resolve_padding((1, 2), (7,), (3,), (1,)), "resolve_padding", "padding=(1, 2)"),
    (lambda: P.resolve_padding(-1, (7,), (3,), (1,)), "resolve_padding", "padding=-1"),
    (lambda: P.resolve_padding(((1, -2),), (7,), (3,), (1,)), "resolve_padding",
     "padding=((1, -2),)"),
    (lambda: P.resolve_padding(1, (7, 7), (3,), (1, 1)), "resolve_padding", "kernel=(3,)"),
    (lambda: P.resolve_padding("x", (7,), (3,), (1,), name="Conv"), "Conv", "padding='x'"),
    (lambda: P.conv_output_size(0, 3), "conv_output_size", "size=0"),
    (lambda: P.conv_output_size(8, 0), "conv_output_size", "kernel=0"),
    (lambda: P.conv_output_size(8, 3, 0), "conv_output_size", "stride=0"),
    (lambda: P.conv_output_size(8, 3, 1, -1), "conv_output_size", "padding=-1"),
    (lambda: P.conv_output_size(4, 7, 1, 1), "conv_output_size", "kernel=7"),
    (lambda: P.conv_output_size(4, 7, name="Conv"), "Conv", "kernel=7"),
    (lambda: P.pool_output_size(0, 2), "pool_output_size", "size=0"),
    (lambda: P.pool_output_size(8, 0), "pool_output_size", "window=0"),
    (lambda: P.pool_output_size(8, 2, 0), "pool_output_size", "stride=0"),
    (lambda: P.pool_output_size(8, 2, None, (1, 2, 3)), "pool_output_size", "padding=(1, 2, 3)"),
    (lambda: P.pool_output_size(4, 7), "pool_output_size", "window=7"),
    (lambda: P.check_window_fits("max_pool", (1, 4, 3), (5,), ((0, 0),), "window"), "max_pool",
     "window (5,)"),
]


@pytest.mark.parametrize("call, fn, argument", ERRORS)
def test_padding_errors_name_function_and_argument(call, fn, argument):
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert message.startswith(f"{fn}: "), message
    assert argument in message, message
    if fn == "pool_output_size":  # a pooling has a window, not a kernel
        assert "kernel" not in message, message
