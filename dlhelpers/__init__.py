"""dlhelpers: the tested, from-scratch building blocks behind the curriculum notebooks.

One module per topic, each mirroring the PyTorch API it re-implements, so that a
scratch-vs-PyTorch comparison is a one-liner::

    from dlhelpers import conv
    torch.testing.assert_close(conv.conv2d(x, w, stride=2), F.conv2d(x, w, stride=2))

Modules are imported on demand (``from dlhelpers import conv``); importing the
package itself is cheap.
"""

__version__ = "0.1.0"
