"""Built-in plugin ``digital_human``: the digital-human de-aging method (see :mod:`.method`)."""

from __future__ import annotations

from reconstruct import hookimpl


@hookimpl
def register_aging_methods():
    from .method import DigitalHumanMethod

    return [DigitalHumanMethod]


@hookimpl
def register_cli_arguments(command, parser):
    if command == "run":
        parser.add_argument("--young-refs", dest="digital_human.young_refs", metavar="DIR", default=None,
                            help="digital_human: folder of stills of the actor when young (optional cameras.json, "
                                 "identity.npy); see docs/methods/digital_human.md")
