"""Docker's random container names (``adjective_surname``), as moby generates them.

The word lists are data copied verbatim, in moby's order, from
``pkg/namesgenerator/names-generator.go`` at moby tag ``v20.10.24`` (the engine
version LayerLab imitates): 108 adjectives (``left``) and 236 surnames
(``right``) of notable scientists and hackers.  (moby's current tree, now under
``internal/namesgenerator``, holds the same 108 + 236 words, only sorted.)

Rules reproduced from ``GetRandomName``: both words are drawn uniformly,
``boring_wozniak`` is rejected and redrawn ("Steve Wozniak is not boring"), and
when ``retry > 0`` one random decimal digit is appended (``focused_turing3``).
moby draws from Go's ``math/rand``, so the concrete sequence of names differs.
``unique_name`` follows the daemon's ``generateNewName`` (``daemon/names.go``):
tries with retry 0..5, then falls back to the 12-character container ID.
"""
from __future__ import annotations

import os
from collections.abc import Callable

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    import random

__all__ = ["LEFT", "RIGHT", "random_name", "unique_name"]

#: Adjectives, moby ``left`` (108 entries).
LEFT: tuple[str, ...] = (
    "admiring", "adoring", "affectionate", "agitated", "amazing", "angry", "awesome",
    "beautiful", "blissful", "bold", "boring", "brave", "busy", "charming", "clever", "cool",
    "compassionate", "competent", "condescending", "confident", "cranky", "crazy", "dazzling",
    "determined", "distracted", "dreamy", "eager", "ecstatic", "elastic", "elated", "elegant",
    "eloquent", "epic", "exciting", "fervent", "festive", "flamboyant", "focused", "friendly",
    "frosty", "funny", "gallant", "gifted", "goofy", "gracious", "great", "happy", "hardcore",
    "heuristic", "hopeful", "hungry", "infallible", "inspiring", "interesting", "intelligent",
    "jolly", "jovial", "keen", "kind", "laughing", "loving", "lucid", "magical", "mystifying",
    "modest", "musing", "naughty", "nervous", "nice", "nifty", "nostalgic", "objective",
    "optimistic", "peaceful", "pedantic", "pensive", "practical", "priceless", "quirky",
    "quizzical", "recursing", "relaxed", "reverent", "romantic", "sad", "serene", "sharp",
    "silly", "sleepy", "stoic", "strange", "stupefied", "suspicious", "sweet", "tender",
    "thirsty", "trusting", "unruffled", "upbeat", "vibrant", "vigilant", "vigorous", "wizardly",
    "wonderful", "xenodochial", "youthful", "zealous", "zen",
)

#: Surnames, moby ``right`` (236 entries).
RIGHT: tuple[str, ...] = (
    "albattani", "allen", "almeida", "antonelli", "agnesi", "archimedes", "ardinghelli",
    "aryabhata", "austin", "babbage", "banach", "banzai", "bardeen", "bartik", "bassi",
    "beaver", "bell", "benz", "bhabha", "bhaskara", "black", "blackburn", "blackwell", "bohr",
    "booth", "borg", "bose", "bouman", "boyd", "brahmagupta", "brattain", "brown", "buck",
    "burnell", "cannon", "carson", "cartwright", "carver", "cerf", "chandrasekhar", "chaplygin",
    "chatelet", "chatterjee", "chebyshev", "cohen", "chaum", "clarke", "colden", "cori", "cray",
    "curran", "curie", "darwin", "davinci", "dewdney", "dhawan", "diffie", "dijkstra", "dirac",
    "driscoll", "dubinsky", "easley", "edison", "einstein", "elbakyan", "elgamal", "elion",
    "ellis", "engelbart", "euclid", "euler", "faraday", "feistel", "fermat", "fermi", "feynman",
    "franklin", "gagarin", "galileo", "galois", "ganguly", "gates", "gauss", "germain",
    "goldberg", "goldstine", "goldwasser", "golick", "goodall", "gould", "greider",
    "grothendieck", "haibt", "hamilton", "haslett", "hawking", "hellman", "heisenberg",
    "hermann", "herschel", "hertz", "heyrovsky", "hodgkin", "hofstadter", "hoover", "hopper",
    "hugle", "hypatia", "ishizaka", "jackson", "jang", "jemison", "jennings", "jepsen",
    "johnson", "joliot", "jones", "kalam", "kapitsa", "kare", "keldysh", "keller", "kepler",
    "khayyam", "khorana", "kilby", "kirch", "knuth", "kowalevski", "lalande", "lamarr",
    "lamport", "leakey", "leavitt", "lederberg", "lehmann", "lewin", "lichterman", "liskov",
    "lovelace", "lumiere", "mahavira", "margulis", "matsumoto", "maxwell", "mayer", "mccarthy",
    "mcclintock", "mclaren", "mclean", "mcnulty", "mendel", "mendeleev", "meitner", "meninsky",
    "merkle", "mestorf", "mirzakhani", "moore", "morse", "murdock", "moser", "napier", "nash",
    "neumann", "newton", "nightingale", "nobel", "noether", "northcutt", "noyce", "panini",
    "pare", "pascal", "pasteur", "payne", "perlman", "pike", "poincare", "poitras",
    "proskuriakova", "ptolemy", "raman", "ramanujan", "ride", "montalcini", "ritchie", "rhodes",
    "robinson", "roentgen", "rosalind", "rubin", "saha", "sammet", "sanderson", "satoshi",
    "shamir", "shannon", "shaw", "shirley", "shockley", "shtern", "sinoussi", "snyder",
    "solomon", "spence", "stonebraker", "sutherland", "swanson", "swartz", "swirles", "taussig",
    "tesla", "tharp", "thompson", "torvalds", "tu", "turing", "varahamihira", "vaughan",
    "visvesvaraya", "volhard", "villani", "wescoff", "wilbur", "wiles", "williams",
    "williamson", "wilson", "wing", "wozniak", "wright", "wu", "yalow", "yonath", "zhukovsky",
)

_REJECTED = "boring_wozniak"


def _system_randrange(n: int) -> int:
    return int.from_bytes(os.urandom(8), "big") % n


def random_name(rng: random.Random | None = None, retry: int = 0) -> str:
    """Return a name such as ``focused_turing`` (``focused_turing7`` when ``retry > 0``).

    ``rng`` defaults to the system's random bytes (the ``random`` module is not worth its import
    time here); pass a seeded
    ``random.Random`` for reproducible names.  Callers retry with ``retry=1, 2, …``
    when the name is already taken, as the daemon does.
    """
    randrange = rng.randrange if rng is not None else _system_randrange
    while True:
        name = f"{LEFT[randrange(len(LEFT))]}_{RIGHT[randrange(len(RIGHT))]}"
        if name != _REJECTED:
            break
    if retry > 0:
        name += str(randrange(10))
    return name


def unique_name(is_taken: Callable[[str], bool], container_id: str,
                rng: random.Random | None = None) -> str:
    """Pick a free name like the daemon: ``random_name(retry=i)`` for i in 0..5, else the short ID.

    ``is_taken`` says whether a name (without moby's leading ``/``) is in use.
    The short-ID fallback is returned even if taken (moby would then fail).
    """
    for retry in range(6):
        name = random_name(rng, retry)
        if not is_taken(name):
            return name
    _, sep, rest = container_id.partition(":")
    return (rest if sep else container_id)[:12]
