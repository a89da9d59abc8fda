"""Synthetic sign corpus: a small, learnable toy sign language written in the official Uni-Sign layout.

A fresh machine has no sign-language data, so the embedded default trains and evaluates on this corpus.
Every sign of the toy language is a coarse, unique combination of handshape, location, movement and
one/two-handedness; sentences follow a small grammar whose gloss order differs from the word order of
the translation. Signers (body proportions, frame position, tempo, detector noise) vary; the test split
uses signers never seen in training. See docs/synthetic_corpus.md.

    python -m datasets.synthetic --out DIR [--seed N] [--lang en|zh] [--videos] [--size tiny|small|default]

Geometry conventions used below:
  * "body units": 1 unit = the signer's shoulder width, origin at the neck (midpoint of the shoulders),
    y pointing down as in images.
  * "own" coordinates of a hand: body units with x pointing away from the body midline towards that
    hand's side (so both hands share one set of formulas); `_own_to_image` mirrors them into image x.
  * keypoints are written as x/W, y/H in [0, 1] of a 256 x 256 frame.
"""
import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from datasets.formats import LabelEntry, write_csl_news_labels, write_official_labels, write_pose_pkl
from datasets.keypoints import NUM_KEYPOINTS

FRAME_SIZE = 256  # rendered frames are FRAME_SIZE x FRAME_SIZE pixels
FPS = 25
SPLITS = ("train", "dev", "test")


# ============================================================================ the toy sign language

# Finger configuration: (thumb flex, index, middle, ring, little flex, finger spread, thumb abduction), each in
# [0, 1]; flex 0 = straight, 1 = curled into the palm.
HANDSHAPES = {
    "flat": (0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    "spread": (0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0),
    "fist": (1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0),
    "point": (1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0),
    "v": (1.0, 0.0, 0.0, 1.0, 1.0, 0.8, 0.0),
    "c": (0.3, 0.45, 0.45, 0.45, 0.45, 0.0, 0.7),
    "o": (0.6, 0.65, 0.65, 0.65, 0.65, 0.0, 0.5),
    "thumb_up": (0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0),
    "y": (0.0, 1.0, 1.0, 1.0, 0.0, 0.6, 1.0),
    "l": (0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0),
}
RELAXED_HANDSHAPE = (0.3, 0.25, 0.3, 0.35, 0.4, 0.2, 0.3)  # the resting hand

# Palm centre of the dominant hand for a one-handed sign, in own coordinates (body units).
LOCATIONS = {
    "forehead": (0.05, -0.77),
    "cheek": (0.22, -0.54),
    "chin": (0.0, -0.30),
    "high": (0.45, -0.5),  # beside the head
    "shoulder": (0.45, 0.05),
    "chest": (0.05, 0.3),
    "side": (0.75, 0.45),
    "neutral": (0.25, 0.7),
    "waist": (0.05, 0.95),
}
TWO_HANDED_SEPARATION = 0.15  # each hand of a two-handed sign moves this far out to its own side
REST_PALM = (0.55, 1.3)  # hands hanging beside the hips (the arm is fully stretched there)

# Direction the fingers point, as an angle (degrees) from straight up, positive towards the body midline.
ORIENTATIONS = {"up": 0.0, "inward": 75.0, "outward": -60.0, "down": 170.0}
# Core frames of one sign at tempo 1, per movement (longer movements take longer).
MOVEMENT_FRAMES = {"static": 6, "up": 7, "down": 7, "sideways": 8, "circle": 8, "tap": 7, "outward": 7, "twist": 7}
MOVEMENTS = tuple(MOVEMENT_FRAMES)


@dataclass(frozen=True)
class Sign:
    """One sign of the toy language: how it is made and what it means."""

    gloss: str  # upper-case English gloss; also the sign's id
    english: str  # word(s) used in English translations
    chinese: str  # the Chinese word (gloss and translation in --lang zh)
    category: str  # pronoun, person, time, place, thing, verb, adjective, question, function
    handshape: str
    location: str
    movement: str
    two_handed: bool
    orientation: str = "up"

    def form(self):
        """The manual form that must be unique per sign."""
        return (self.handshape, self.location, self.movement, self.two_handed)


def _sign(gloss, english, chinese, category, handshape, location, movement, hands, orientation="up"):
    return Sign(gloss, english, chinese, category, handshape, location, movement, hands == 2, orientation)


VOCABULARY = (
    _sign("I", "I", "我", "pronoun", "point", "chest", "tap", 1, "inward"),
    _sign("YOU", "you", "你", "pronoun", "point", "neutral", "outward", 1),
    _sign("HE", "he", "他", "pronoun", "point", "side", "static", 1, "outward"),
    _sign("WE", "we", "我们", "pronoun", "point", "shoulder", "sideways", 1, "inward"),
    _sign("MY", "my", "我的", "function", "flat", "chest", "static", 1, "inward"),
    _sign("TEACHER", "teacher", "老师", "person", "flat", "forehead", "outward", 2),
    _sign("STUDENT", "student", "学生", "person", "v", "neutral", "down", 2),
    _sign("FRIEND", "friend", "朋友", "person", "o", "chest", "tap", 2, "inward"),
    _sign("MOTHER", "mother", "妈妈", "person", "spread", "forehead", "tap", 1),
    _sign("TODAY", "today", "今天", "time", "y", "waist", "down", 2),
    _sign("TOMORROW", "tomorrow", "明天", "time", "thumb_up", "cheek", "outward", 1),
    _sign("YESTERDAY", "yesterday", "昨天", "time", "y", "cheek", "tap", 1),
    _sign("EVERYDAY", "every day", "每天", "time", "fist", "cheek", "circle", 1),
    _sign("STORE", "store", "商店", "place", "o", "neutral", "twist", 2, "down"),
    _sign("SCHOOL", "school", "学校", "place", "flat", "neutral", "tap", 2, "inward"),
    _sign("PARK", "park", "公园", "place", "spread", "neutral", "circle", 2),
    _sign("HOSPITAL", "hospital", "医院", "place", "v", "shoulder", "down", 1, "inward"),
    _sign("BOOK", "book", "书", "thing", "flat", "waist", "twist", 2, "inward"),
    _sign("BREAD", "bread", "面包", "thing", "c", "waist", "sideways", 2, "inward"),
    _sign("APPLE", "apple", "苹果", "thing", "fist", "chin", "twist", 1),
    _sign("WATER", "water", "水", "thing", "v", "chin", "static", 1),
    _sign("TEA", "tea", "茶", "thing", "o", "waist", "circle", 1, "down"),
    _sign("CAR", "car", "车", "thing", "fist", "neutral", "sideways", 2),
    _sign("FISH", "fish", "鱼", "thing", "flat", "neutral", "sideways", 1, "inward"),
    _sign("GO", "go", "去", "verb", "point", "waist", "outward", 2, "outward"),
    _sign("EAT", "eat", "吃", "verb", "o", "chin", "tap", 1),
    _sign("DRINK", "drink", "喝", "verb", "c", "chin", "up", 1, "inward"),
    _sign("BUY", "buy", "买", "verb", "o", "side", "up", 1),
    _sign("READ", "read", "读", "verb", "v", "waist", "sideways", 1, "down"),
    _sign("SEE", "see", "见", "verb", "v", "forehead", "outward", 1),
    _sign("LIKE", "like", "喜欢", "verb", "l", "chest", "outward", 1),
    _sign("WANT", "want", "想要", "verb", "spread", "waist", "up", 2),
    _sign("HELP", "help", "帮助", "verb", "thumb_up", "neutral", "up", 1),
    _sign("GOOD", "good", "好", "adjective", "flat", "chin", "down", 1),
    _sign("BIG", "big", "大", "adjective", "l", "neutral", "outward", 2),
    _sign("NEW", "new", "新", "adjective", "c", "side", "down", 1, "inward"),
    _sign("SMALL", "small", "小", "adjective", "c", "neutral", "static", 2, "inward"),
    _sign("WHAT", "what", "什么", "question", "spread", "side", "sideways", 2),
    _sign("WHERE", "where", "哪里", "question", "point", "high", "circle", 1),
    _sign("WHO", "who", "谁", "question", "l", "chin", "circle", 1),
    _sign("NOT", "not", "不", "function", "y", "chin", "sideways", 1),
)
SIGNS = {sign.gloss: sign for sign in VOCABULARY}


def gloss_word(gloss, lang):
    """The word written for a gloss in a gloss sequence: the gloss itself (en) or the Chinese word (zh)."""
    return gloss if lang == "en" else SIGNS[gloss].chinese


def isolated_word(gloss, lang):
    """ISLR target of a sign: the lower-case English gloss (WLASL style) or the Chinese word."""
    return gloss.lower() if lang == "en" else SIGNS[gloss].chinese


# ============================================================================ grammar

def _of(category):
    return tuple(sign.gloss for sign in VOCABULARY if sign.category == category)


PRONOUNS, PERSONS, TIMES, PLACES, THINGS = (_of(c) for c in ("pronoun", "person", "time", "place", "thing"))
ADJECTIVES = _of("adjective")
VERB_FORMS = {  # base, third person singular, past
    "GO": ("go", "goes", "went"),
    "EAT": ("eat", "eats", "ate"),
    "DRINK": ("drink", "drinks", "drank"),
    "BUY": ("buy", "buys", "bought"),
    "READ": ("read", "reads", "read"),
    "SEE": ("see", "sees", "saw"),
    "LIKE": ("like", "likes", "liked"),
    "WANT": ("want", "wants", "wanted"),
    "HELP": ("help", "helps", "helped"),
}
VERB_OBJECTS = {
    "GO": PLACES,
    "EAT": ("BREAD", "APPLE", "FISH"),
    "DRINK": ("WATER", "TEA"),
    "BUY": THINGS,
    "READ": ("BOOK",),
    "SEE": PERSONS + ("CAR",),
    "LIKE": THINGS + PERSONS + PLACES,
    "WANT": THINGS,
    "HELP": PERSONS,
}
STATIVE_VERBS = ("LIKE", "WANT")  # Chinese marks their past without 了
NOUN_ADJECTIVES = {  # adjectives that read naturally with a noun (attributive and predicative)
    "BOOK": ADJECTIVES, "CAR": ADJECTIVES, "APPLE": ("GOOD", "BIG", "SMALL"), "FISH": ("BIG", "SMALL"),
    "BREAD": ("GOOD",), "TEA": ("GOOD",), "WATER": ("GOOD",),
    **{person: ("GOOD",) for person in PERSONS},
    **{place: ADJECTIVES for place in PLACES},
}
POSSESSABLE = PERSONS + ("BOOK", "CAR")
TENSE_OF_TIME = {None: "present", "EVERYDAY": "present", "TODAY": "future", "TOMORROW": "future", "YESTERDAY": "past"}
QUESTION_SUBJECTS = ("YOU", "HE") + PERSONS


@dataclass(frozen=True)
class NounPhrase:
    noun: str  # gloss of a pronoun or noun
    possessed: bool = False  # preceded by MY
    adjective: str | None = None  # attributive adjective, signed after the noun

    def glosses(self):
        return (["MY"] if self.possessed else []) + [self.noun] + ([self.adjective] if self.adjective else [])


@dataclass(frozen=True)
class Clause:
    """One sentence of the toy language, before it is written out in gloss order or translated."""

    kind: str  # 'statement' (SUBJ VERB OBJ), 'description' (NOUN is ADJ), 'what', 'where', 'who'
    subject: NounPhrase | None = None
    verb: str | None = None
    obj: NounPhrase | None = None
    time: str | None = None
    predicate: str | None = None  # adjective of a description
    negated: bool = False

    @property
    def tense(self):
        return TENSE_OF_TIME[self.time]


def clause_glosses(clause):
    """Gloss order (topic-comment, verb last, time first): e.g. TOMORROW I STORE GO."""
    time = [clause.time] if clause.time else []
    negation = ["NOT"] if clause.negated else []
    if clause.kind == "statement":
        return time + clause.subject.glosses() + clause.obj.glosses() + [clause.verb] + negation
    if clause.kind == "description":
        return clause.subject.glosses() + [clause.predicate] + negation
    if clause.kind == "who":
        return time + clause.obj.glosses() + [clause.verb, "WHO"]
    return time + clause.subject.glosses() + [clause.verb, clause.kind.upper()]  # what / where


# ---------------------------------------------------------------------------- sampling clauses

def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


def _sample_object(rng, verb):
    noun = _pick(rng, VERB_OBJECTS[verb])
    adjective = _pick(rng, NOUN_ADJECTIVES[noun]) if noun in THINGS and rng.random() < 0.3 else None
    return NounPhrase(noun, possessed=noun in POSSESSABLE and rng.random() < 0.2, adjective=adjective)


def _sample_person_subject(rng, pronouns):
    if rng.random() < 0.5:
        return NounPhrase(_pick(rng, pronouns))
    return NounPhrase(_pick(rng, PERSONS), possessed=rng.random() < 0.4)


def _sample_time(rng):
    return _pick(rng, TIMES) if rng.random() < 0.7 else None


def sample_clause(rng):
    """Draw one clause from the grammar (2 to 7 signs)."""
    kind = _pick(rng, ("statement",) * 5 + ("description",) * 2 + ("what", "where", "who"))
    if kind == "description":
        noun = _pick(rng, THINGS + PERSONS + PLACES)
        subject = NounPhrase(noun, possessed=noun in POSSESSABLE and rng.random() < 0.4)
        return Clause(kind, subject, predicate=_pick(rng, NOUN_ADJECTIVES[noun]), negated=rng.random() < 0.25)
    if kind == "statement":
        verb = _pick(rng, tuple(VERB_FORMS))
        return Clause(kind, _sample_person_subject(rng, PRONOUNS), verb, _sample_object(rng, verb),
                      _sample_time(rng), negated=rng.random() < 0.2)
    if kind == "who":
        verb = _pick(rng, tuple(VERB_FORMS))
        return Clause(kind, verb=verb, obj=_sample_object(rng, verb), time=_sample_time(rng))
    verb = "GO" if kind == "where" else _pick(rng, ("EAT", "DRINK", "BUY", "READ", "WANT", "LIKE"))
    return Clause(kind, _sample_person_subject(rng, ("YOU", "HE")), verb, time=_sample_time(rng))


def sample_clause_with(rng, gloss, max_tries=2000):
    """Draw clauses until one contains `gloss` (used so that the news set covers the whole vocabulary)."""
    for _ in range(max_tries):
        clause = sample_clause(rng)
        if gloss in clause_glosses(clause):
            return clause
    raise RuntimeError(f"the grammar did not produce the sign {gloss} in {max_tries} tries")


# ---------------------------------------------------------------------------- translation

def _english_noun_phrase(phrase):
    if phrase.noun in PRONOUNS:
        return SIGNS[phrase.noun].english
    words = ["my" if phrase.possessed else "the"]
    if phrase.adjective:
        words.append(SIGNS[phrase.adjective].english)
    return " ".join(words + [SIGNS[phrase.noun].english])


def _english_verb(verb, tense, third_person, negated):
    base, third, past = VERB_FORMS[verb]
    if tense == "future":
        return f"will not {base}" if negated else f"will {base}"
    if tense == "past":
        return f"did not {base}" if negated else past
    if negated:
        return f"does not {base}" if third_person else f"do not {base}"
    return third if third_person else base


def _english_auxiliary(tense, third_person):
    return {"future": "will", "past": "did"}.get(tense, "does" if third_person else "do")


def _is_third_person(phrase):
    return phrase.noun not in ("I", "YOU", "WE")


def english_sentence(clause):
    """English translation with its own word order, e.g. 'I will go to the store tomorrow.'"""
    when = f" {SIGNS[clause.time].english}" if clause.time else ""
    if clause.kind == "description":
        verb = "is not" if clause.negated else "is"
        words = f"{_english_noun_phrase(clause.subject)} {verb} {SIGNS[clause.predicate].english}."
    elif clause.kind in ("what", "where"):
        base = VERB_FORMS[clause.verb][0]
        auxiliary = _english_auxiliary(clause.tense, _is_third_person(clause.subject))
        words = f"{clause.kind} {auxiliary} {_english_noun_phrase(clause.subject)} {base}{when}?"
    else:
        goal = "to " if clause.verb == "GO" else ""
        if clause.kind == "who":
            subject, third_person, end = "who", True, "?"
        else:
            subject, third_person, end = _english_noun_phrase(clause.subject), _is_third_person(clause.subject), "."
        verb = _english_verb(clause.verb, clause.tense, third_person, clause.negated)
        words = f"{subject} {verb} {goal}{_english_noun_phrase(clause.obj)}{when}{end}"
    return words[0].upper() + words[1:]


def _chinese_noun_phrase(phrase):
    possessor = "我的" if phrase.possessed else ""
    adjective = SIGNS[phrase.adjective].chinese if phrase.adjective else ""
    return possessor + adjective + SIGNS[phrase.noun].chinese


def _chinese_verb(clause):
    """Verb with negation (不 / 没 in the past) and the perfective 了 for completed actions."""
    verb = SIGNS[clause.verb].chinese
    past = clause.tense == "past"
    if clause.negated:
        return ("没" if past else "不") + verb
    return verb + ("了" if past and clause.verb not in STATIVE_VERBS else "")


def chinese_sentence(clause):
    """Chinese translation, e.g. '我明天去商店。' (time after the subject, verb before the object)."""
    when = SIGNS[clause.time].chinese if clause.time else ""
    if clause.kind == "description":
        degree = "不" if clause.negated else "很"
        return f"{_chinese_noun_phrase(clause.subject)}{degree}{SIGNS[clause.predicate].chinese}。"
    if clause.kind == "who":
        return f"谁{when}{_chinese_verb(clause)}{_chinese_noun_phrase(clause.obj)}？"
    subject = _chinese_noun_phrase(clause.subject)
    if clause.kind in ("what", "where"):
        return f"{subject}{when}{_chinese_verb(clause)}{SIGNS[clause.kind.upper()].chinese}？"
    return f"{subject}{when}{_chinese_verb(clause)}{_chinese_noun_phrase(clause.obj)}。"


def render_clauses(clauses, lang):
    """(gloss words, text) of one utterance made of one or more clauses."""
    glosses = [gloss for clause in clauses for gloss in clause_glosses(clause)]
    if lang == "en":
        return [gloss_word(g, lang) for g in glosses], " ".join(english_sentence(c) for c in clauses)
    return [gloss_word(g, lang) for g in glosses], "".join(chinese_sentence(c) for c in clauses)


# ============================================================================ signers

@dataclass(frozen=True)
class Signer:
    """Body, framing, tempo and pose-detector quality of one (synthetic) person."""

    signer_id: str
    centre_x: float  # x of the neck in the frame, [0, 1]
    neck_y: float  # y of the neck in the frame, [0, 1]
    shoulder_width: float  # body unit as a fraction of the frame side
    head_size: float  # multipliers of the average proportions
    torso_length: float
    arm_length: float
    hand_size: float
    shoulder_tilt: float  # body units the left shoulder sits lower than the right
    location_bias: tuple  # (x, y) body units added to every sign location (personal style)
    tempo: float  # frames per sign relative to the average signer (> 1 = slower)
    jitter: float  # std of per-frame keypoint noise, fraction of the frame
    hand_score: float  # mean detector confidence on the hands
    low_confidence_rate: float  # per hand and frame
    missing_hand_rate: float  # per hand and frame
    skin_colour: tuple  # BGR, for rendered videos
    shirt_colour: tuple
    background_colour: tuple


def sample_signer(rng, signer_id):
    def colour(low, high):
        return tuple(int(c) for c in rng.integers(low, high, size=3))

    skin = rng.uniform(0.0, 1.0)
    return Signer(
        signer_id=signer_id,
        centre_x=float(rng.uniform(0.42, 0.58)),
        neck_y=float(rng.uniform(0.40, 0.48)),
        shoulder_width=float(rng.uniform(0.24, 0.31)),
        head_size=float(rng.uniform(0.9, 1.1)),
        torso_length=float(rng.uniform(0.9, 1.1)),
        arm_length=float(rng.uniform(0.93, 1.07)),
        hand_size=float(rng.uniform(0.9, 1.1)),
        shoulder_tilt=float(rng.uniform(-0.04, 0.04)),
        location_bias=tuple(float(v) for v in rng.normal(0.0, 0.04, size=2)),
        tempo=float(rng.uniform(0.8, 1.25)),
        jitter=float(rng.uniform(0.0015, 0.004)),
        hand_score=float(rng.uniform(0.75, 0.92)),
        low_confidence_rate=float(rng.uniform(0.02, 0.06)),
        missing_hand_rate=float(rng.uniform(0.01, 0.03)),
        skin_colour=tuple(int(c) for c in np.array([90, 140, 200]) + skin * np.array([80, 70, 45])),
        shirt_colour=colour(30, 200),
        background_colour=colour(150, 250),
    )


# ============================================================================ articulation (controls per frame)

# Per-frame control vector: where the palms are, hand configurations, finger directions, mouth opening.
# Hands are ordered (right = dominant, left).
PALMS = slice(0, 4)  # (T, 2 hands, 2) palm centres, own coordinates
SHAPES = slice(4, 18)  # (T, 2 hands, 7) handshape parameters
ANGLES = slice(18, 20)  # (T, 2 hands) finger direction, radians from up, positive towards the midline
MOUTH = 20  # (T,) mouth opening in [0, 1]
NUM_CONTROLS = 21


def _controls(palms, shapes, angles, mouth):
    """Pack per-frame arrays palms (T,2,2), shapes (T,2,7), angles (T,2), mouth (T,) into (T, NUM_CONTROLS)."""
    frames = len(mouth)
    return np.concatenate(
        [palms.reshape(frames, 4), shapes.reshape(frames, 14), angles, mouth[:, None]], axis=1
    )


def rest_controls(frames, rng):
    """Both hands hanging relaxed beside the hips."""
    palms = np.broadcast_to(np.array(REST_PALM) + rng.normal(0, 0.02, size=(2, 2)), (frames, 2, 2))
    shapes = np.broadcast_to(np.array(RELAXED_HANDSHAPE), (frames, 2, 7))
    angles = np.full((frames, 2), np.radians(ORIENTATIONS["down"]))
    return _controls(palms, shapes, angles, np.zeros(frames))


def movement_path(movement, progress, amplitude):
    """Palm offset (T, 2) in own coordinates and finger-angle offset (T,) along a sign; progress (T,) in [0, 1]."""
    offset = np.zeros((len(progress), 2))
    angle = np.zeros(len(progress))
    if movement == "up":
        offset[:, 1] = 0.11 - 0.22 * progress
    elif movement == "down":
        offset[:, 1] = -0.11 + 0.22 * progress
    elif movement == "sideways":
        offset[:, 0] = 0.1 * np.sin(3 * np.pi * progress)
    elif movement == "circle":
        offset[:, 0] = 0.12 * np.cos(2 * np.pi * progress)
        offset[:, 1] = 0.12 * np.sin(2 * np.pi * progress)
    elif movement == "tap":
        offset[:, 1] = -0.07 * np.abs(np.sin(2 * np.pi * progress))
    elif movement == "outward":
        offset[:, 0] = -0.12 + 0.28 * progress
    elif movement == "twist":
        angle = 0.6 * np.sin(2 * np.pi * progress)
    return amplitude * offset, amplitude * angle


def sign_frame_count(sign, signer, rng):
    return max(4, int(round(MOVEMENT_FRAMES[sign.movement] * signer.tempo * rng.uniform(0.9, 1.1))))


def sign_controls(sign, frames, signer, rng, resting):
    """Controls (frames, NUM_CONTROLS) of one articulation of `sign`; `resting` is the non-dominant hand's rest pose."""
    progress = np.linspace(0.0, 1.0, frames)
    offset, twist = movement_path(sign.movement, progress, amplitude=rng.uniform(0.8, 1.2))
    place = np.array(LOCATIONS[sign.location]) + np.array(signer.location_bias) + rng.normal(0, 0.03, size=2)
    shape = np.clip(np.array(HANDSHAPES[sign.handshape]) + rng.normal(0, 0.04, size=7), 0.0, 1.0)
    angle = np.radians(ORIENTATIONS[sign.orientation]) + twist  # (frames,)
    palms = resting[:, PALMS].reshape(frames, 2, 2).copy()
    shapes = resting[:, SHAPES].reshape(frames, 2, 7).copy()
    angles = resting[:, ANGLES].copy()
    hands = (0, 1) if sign.two_handed else (0,)
    separation = TWO_HANDED_SEPARATION if sign.two_handed else 0.0
    for hand in hands:  # own coordinates make the non-dominant hand the mirror image of the dominant one
        palms[:, hand] = place + (separation, 0.0) + offset
        shapes[:, hand] = shape
        angles[:, hand] = angle
    mouth = rng.uniform(0.0, 0.6) * np.sin(np.pi * progress)
    return _controls(palms, shapes, angles, mouth)


def transition_controls(start, end, frames):
    """Smooth (smoothstep) interpolation strictly between two control vectors: (frames, NUM_CONTROLS)."""
    t = np.arange(1, frames + 1) / (frames + 1)
    t = t * t * (3 - 2 * t)
    return start + (end - start) * t[:, None]


def utterance_controls(glosses, signer, rng):
    """Controls for a whole utterance: rest, signs joined by short transitions, rest again. (T, NUM_CONTROLS)."""

    def transition_frames(base):
        return max(1, int(round(base * signer.tempo * rng.uniform(0.8, 1.2))))

    blocks = [rest_controls(1, rng)]
    for gloss in glosses:
        sign = SIGNS[gloss]
        frames = sign_frame_count(sign, signer, rng)
        block = sign_controls(sign, frames, signer, rng, rest_controls(frames, rng))
        blocks += [transition_controls(blocks[-1][-1], block[0], transition_frames(2)), block]
    final_rest = rest_controls(1, rng)
    blocks += [transition_controls(blocks[-1][-1], final_rest[0], transition_frames(2)), final_rest]
    return np.concatenate(blocks)


# ============================================================================ skeleton (vectorised over frames)

# Hand model in hand-local coordinates (u towards the thumb side, v along the fingers), in hand lengths.
FINGER_BASES = np.array([[0.10, 0.45], [0.02, 0.47], [-0.06, 0.45], [-0.13, 0.41]])  # index..little MCP
FINGER_SEGMENTS = np.array([[0.22, 0.13, 0.10], [0.24, 0.15, 0.11], [0.22, 0.14, 0.10], [0.17, 0.10, 0.09]])
FINGER_FAN = np.radians([4.0, 0.0, -4.0, -9.0])  # finger direction at rest, positive towards the thumb
FINGER_SPREAD_FAN = np.radians([12.0, 0.0, -10.0, -20.0])  # added at full spread
FINGER_BEND = np.radians([80.0, 180.0, 250.0])  # cumulative joint bend of a fully curled finger (MCP, PIP, DIP)
THUMB_BASE = np.array([0.12, 0.10])  # CMC joint
THUMB_SEGMENTS = np.array([0.17, 0.14, 0.12])
THUMB_CURL = np.radians([0.0, 50.0, 110.0])  # how far each thumb segment turns across the palm when curled
PALM_CENTRE = 0.25  # palm centre lies this many hand lengths from the wrist along the fingers
HAND_LENGTH = 0.48  # body units
UPPER_ARM, FOREARM = 0.62, 0.55  # body units
SHOULDER_OWN = np.array([0.5, 0.0])


def hand_local_points(shapes):
    """21 hand keypoints (T, 21, 2) in hand-local (u, v) coordinates from handshape parameters (T, 7)."""
    thumb_flex, finger_flex, spread, abduction = shapes[:, 0], shapes[:, 1:5], shapes[:, 5], shapes[:, 6]
    fan = FINGER_FAN + spread[:, None] * FINGER_SPREAD_FAN  # (T, 4)
    direction = np.stack([np.sin(fan), np.cos(fan)], axis=-1)  # (T, 4, 2)
    along = np.cumsum(FINGER_SEGMENTS * np.cos(finger_flex[..., None] * FINGER_BEND), axis=-1)  # (T, 4, 3)
    along = np.concatenate([np.zeros_like(along[..., :1]), along], axis=-1)  # (T, 4, 4) incl. the MCP
    fingers = FINGER_BASES[:, None, :] + along[..., None] * direction[:, :, None, :]  # (T, 4, 4, 2)

    thumb_angle = np.radians(20.0 + 40.0 * abduction)[:, None] - thumb_flex[:, None] * THUMB_CURL  # (T, 3)
    steps = THUMB_SEGMENTS[:, None] * np.stack([np.sin(thumb_angle), np.cos(thumb_angle)], axis=-1)  # (T, 3, 2)
    thumb = THUMB_BASE + np.concatenate([np.zeros_like(steps[:, :1]), np.cumsum(steps, axis=1)], axis=1)  # (T, 4, 2)

    wrist = np.zeros((len(shapes), 1, 2))
    return np.concatenate([wrist, thumb, fingers.reshape(len(shapes), 16, 2)], axis=1)


def finger_axes(angles):
    """Unit vectors (T, 2) in own coordinates: along the fingers (v) and towards the thumb (u)."""
    along = np.stack([-np.sin(angles), -np.cos(angles)], axis=-1)
    thumb_side = np.stack([-np.cos(angles), np.sin(angles)], axis=-1)
    return along, thumb_side


def arm_points(wrist_target, signer):
    """Two-link arm: (elbow, wrist) (T, 2) each in own coordinates; the wrist is pulled in if out of reach.

    The elbow always bends to the same side of the shoulder->wrist line (outwards/down), so it moves smoothly.
    """
    upper, fore = UPPER_ARM * signer.arm_length, FOREARM * signer.arm_length
    reach = wrist_target - SHOULDER_OWN  # (T, 2)
    distance = np.linalg.norm(reach, axis=-1, keepdims=True)
    direction = reach / np.maximum(distance, 1e-6)
    distance = np.clip(distance, abs(upper - fore) + 1e-3, 0.98 * (upper + fore))
    wrist = SHOULDER_OWN + direction * distance
    along = (upper ** 2 - fore ** 2 + distance ** 2) / (2 * distance)
    across = np.sqrt(np.maximum(upper ** 2 - along ** 2, 0.0))
    bend_side = np.stack([direction[:, 1], -direction[:, 0]], axis=-1)
    return SHOULDER_OWN + direction * along + bend_side * across, wrist


def arm_and_hand(palms, shapes, angles, signer):
    """Elbow (T, 2), wrist (T, 2) and hand (T, 21, 2) of one arm in own coordinates."""
    hand_length = HAND_LENGTH * signer.hand_size
    along, thumb_side = finger_axes(angles)
    elbow, wrist = arm_points(palms - PALM_CENTRE * hand_length * along, signer)
    local = hand_local_points(shapes)  # (T, 21, 2)
    hand = wrist[:, None] + hand_length * (local[..., :1] * thumb_side[:, None] + local[..., 1:] * along[:, None])
    return elbow, wrist, hand


def _ellipse(centre, width, height, degrees):
    angles = np.radians(np.asarray(degrees, dtype=float))
    return np.stack([centre[0] + width * np.cos(angles), centre[1] + height * np.sin(angles)], axis=-1)


def face_template():
    """68 face landmarks (iBUG order) in body units relative to the nose tip, image x to the right."""
    jaw = _ellipse((0.0, -0.04), 0.20, 0.23, np.linspace(190, -10, 17))  # image left, chin, image right
    right_brow = np.stack([np.linspace(-0.16, -0.03, 5), [-0.13, -0.15, -0.155, -0.15, -0.14]], axis=-1)
    left_brow = right_brow[::-1] * (-1, 1)
    bridge = np.stack([np.zeros(4), np.linspace(-0.10, 0.0, 4)], axis=-1)
    nostrils = np.stack([np.linspace(-0.04, 0.04, 5), [0.02, 0.025, 0.03, 0.025, 0.02]], axis=-1)
    eye_degrees = [180, 240, 300, 0, 60, 120]  # left corner, two upper lid points, right corner, two lower
    right_eye = _ellipse((-0.08, -0.085), 0.035, 0.012, eye_degrees)
    left_eye = _ellipse((0.08, -0.085), 0.035, 0.012, eye_degrees)
    outer_lips = _ellipse((0.0, 0.085), 0.065, 0.022, np.arange(180, 540, 30))  # left corner, upper, lower
    inner_lips = _ellipse((0.0, 0.085), 0.05, 0.01, np.arange(180, 540, 45))
    return np.concatenate([jaw, right_brow, left_brow, bridge, nostrils, right_eye, left_eye, outer_lips, inner_lips])


FACE_TEMPLATE = face_template()  # (68, 2)
# How far each face point moves down when the mouth opens fully: the lower lips and the chin.
MOUTH_OPENING = np.zeros((68, 2))
MOUTH_OPENING[[55, 56, 57, 58, 59, 65, 66, 67], 1] = 0.04
MOUTH_OPENING[5:12, 1] = 0.015
NOSE_TIP_Y = -0.5  # body units above the neck (at head size 1)


def _own_to_image(points, hand):
    """Mirror own coordinates into image-aligned body units: the right hand (0) lies at negative x."""
    return points * np.array([-1.0, 1.0]) if hand == 0 else points


def skeleton(controls, signer, rng):
    """Noise-free 133 COCO-WholeBody keypoints (T, 133, 2) in frame fractions from controls (T, NUM_CONTROLS)."""
    frames = len(controls)
    points = np.zeros((frames, NUM_KEYPOINTS, 2))
    t = np.arange(frames) / FPS
    sway = 0.01 * np.stack([np.sin(2 * np.pi * 0.3 * t + rng.uniform(0, 6.3)), np.zeros(frames)], axis=-1)
    nod = 0.015 * np.stack([np.sin(2 * np.pi * 0.4 * t + rng.uniform(0, 6.3)),
                            np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6.3))], axis=-1)  # (T, 2)

    nose = np.array([0.0, NOSE_TIP_Y * signer.head_size])
    face = nose + signer.head_size * (FACE_TEMPLATE + controls[:, MOUTH, None, None] * MOUTH_OPENING)  # (T, 68, 2)
    points[:, 23:91] = face + nod[:, None]
    points[:, 0] = points[:, 53]  # nose
    points[:, 1] = points[:, 65:71].mean(axis=1)  # left eye = the face's 42-47 (image right)
    points[:, 2] = points[:, 59:65].mean(axis=1)  # right eye = the face's 36-41 (image left)
    points[:, 3] = points[:, 39] + (0.02, -0.04)  # left ear, beside the top of the jaw (image right)
    points[:, 4] = points[:, 23] + (-0.02, -0.04)  # right ear
    torso = signer.torso_length
    points[:, [5, 6]] = [(0.5, signer.shoulder_tilt), (-0.5, -signer.shoulder_tilt)]
    points[:, [11, 12, 13, 14, 15, 16]] = np.array(
        [(0.33, 1.45), (-0.33, 1.45), (0.33, 2.4), (-0.33, 2.4), (0.33, 3.3), (-0.33, 3.3)]) * (1, torso)
    points[:, 17:23] = np.array(
        [(0.42, 3.45), (0.26, 3.45), (0.33, 3.38), (-0.42, 3.45), (-0.26, 3.45), (-0.33, 3.38)]) * (1, torso)

    palms = controls[:, PALMS].reshape(frames, 2, 2)
    shapes = controls[:, SHAPES].reshape(frames, 2, 7)
    angles = controls[:, ANGLES]
    for hand, (elbow_index, wrist_index, first) in enumerate(((8, 10, 112), (7, 9, 91))):  # right, left
        elbow, wrist, hand_points = arm_and_hand(palms[:, hand], shapes[:, hand], angles[:, hand], signer)
        shoulder_shift = points[:, 6 - hand] - _own_to_image(SHOULDER_OWN, hand)  # follow the tilted shoulder
        points[:, elbow_index] = _own_to_image(elbow, hand) + shoulder_shift
        points[:, wrist_index] = _own_to_image(wrist, hand) + shoulder_shift
        points[:, first:first + 21] = _own_to_image(hand_points, hand) + shoulder_shift[:, None]

    points += sway[:, None]
    return np.array([signer.centre_x, signer.neck_y]) + signer.shoulder_width * points


# ============================================================================ pose detector simulation

PART_SCORE_RANGES = {  # (first index, end index, low, high) of the per-point mean confidence
    "body": (0, 17, 0.85, 0.98),
    "feet": (17, 23, 0.05, 0.25),
    "face": (23, 91, 0.75, 0.95),
}
HANDS = {"left": slice(91, 112), "right": slice(112, 133)}


def _burst_mask(rng, frames, rate):
    """Frames (T,) bool hit by a detector failure: independent starts that sometimes last one frame more."""
    start = rng.random(frames) < rate
    longer = np.roll(start, 1) & (rng.random(frames) < 0.5)
    longer[0] = False
    return start | longer


def observe(clean, signer, rng):
    """What a pose detector reports for noise-free keypoints (T, 133, 2): keypoints (T, 133, 2), scores (T, 133).

    Adds per-frame jitter, per-point confidences, low-confidence hand frames (scores < 0.3, noisier points)
    and missing-hand frames (keypoints and scores 0); everything is clipped to [0, 1].
    """
    frames = len(clean)
    keypoints = clean + rng.normal(0.0, signer.jitter, size=clean.shape)
    scores = np.empty((frames, NUM_KEYPOINTS))
    for first, end, low, high in PART_SCORE_RANGES.values():
        scores[:, first:end] = rng.uniform(low, high, size=end - first)
    for points in HANDS.values():
        keypoints[:, points] += rng.normal(0.0, 0.5 * signer.jitter, size=(frames, 21, 2))
        scores[:, points] = signer.hand_score + rng.normal(0.0, 0.04, size=(frames, 1))
    scores += rng.normal(0.0, 0.03, size=scores.shape)
    outside = ((clean < 0.0) | (clean > 1.0)).any(axis=-1)  # (T, 133)
    scores[outside] = rng.uniform(0.02, 0.2, size=int(outside.sum()))

    for points in HANDS.values():
        low = _burst_mask(rng, frames, signer.low_confidence_rate)
        scores[low, points] = rng.uniform(0.05, 0.28, size=(int(low.sum()), 21))
        keypoints[low, points] += rng.normal(0.0, 4 * signer.jitter, size=(int(low.sum()), 21, 2))
        missing = _burst_mask(rng, frames, signer.missing_hand_rate)
        keypoints[missing, points] = 0.0
        scores[missing, points] = 0.0
    return np.clip(keypoints, 0.0, 1.0).astype(np.float32), np.clip(scores, 0.0, 1.0).astype(np.float32)


# ============================================================================ video rendering

FINGER_COLOURS = ((60, 60, 230), (60, 200, 60), (230, 120, 40), (40, 200, 230), (200, 60, 200))  # BGR, thumb..little
HAND_BONES = [[0, 1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16], [17, 18, 19, 20]]
PALM_OUTLINE = [0, 1, 5, 9, 13, 17]


def draw_frame(image, pixels, signer):
    """Draw the figure for one frame of integer pixel keypoints (133, 2) onto a BGR image (in place)."""
    import cv2

    points = pixels.tolist()
    thickness = max(2, int(0.12 * signer.shoulder_width * FRAME_SIZE))
    jaw = pixels[23:40]  # (17, 2)
    jaw_width = int(np.ptp(jaw[:, 0]))
    head_centre = (int(jaw[:, 0].mean()), points[53][1] - int(0.16 * jaw_width))
    neck = ((points[5][0] + points[6][0]) // 2, (points[5][1] + points[6][1]) // 2)

    image[:] = signer.background_colour
    cv2.fillConvexPoly(image, pixels[[5, 6, 12, 11]], signer.shirt_colour)
    cv2.line(image, points[53], neck, signer.skin_colour, thickness)
    cv2.ellipse(image, head_centre, (int(0.53 * jaw_width), int(0.64 * jaw_width)), 0, 0, 360, signer.skin_colour, -1)
    cv2.fillPoly(image, [pixels[59:65], pixels[65:71]], (40, 40, 40))  # eyes
    cv2.fillPoly(image, [pixels[71:83]], (60, 60, 170))  # mouth
    cv2.polylines(image, [pixels[40:45], pixels[45:50]], False, (60, 60, 60), 1)  # eyebrows
    for shoulder, elbow, wrist in ((6, 8, 10), (5, 7, 9)):
        cv2.line(image, points[shoulder], points[elbow], signer.shirt_colour, thickness)
        cv2.line(image, points[elbow], points[wrist], signer.skin_colour, thickness)
    for first in (112, 91):
        hand = pixels[first:first + 21]
        cv2.fillConvexPoly(image, hand[PALM_OUTLINE], signer.skin_colour)
        for bones, colour in zip(HAND_BONES, FINGER_COLOURS):
            cv2.polylines(image, [hand[bones]], False, colour, 2)
            cv2.circle(image, points[first + bones[-1]], 2, colour, -1)


def render_video(path, clean, signer):
    """Write an mp4 (mp4v) with one 256x256 frame per pose frame from noise-free keypoints (T, 133, 2)."""
    import cv2

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (FRAME_SIZE, FRAME_SIZE))
    if not writer.isOpened():
        raise RuntimeError(f"{path}: OpenCV cannot open an mp4v video writer")
    image = np.zeros((FRAME_SIZE, FRAME_SIZE, 3), np.uint8)
    pixels = np.round(clean * FRAME_SIZE).astype(np.int32)  # (T, 133, 2)
    for frame_pixels in pixels:  # drawing is per frame by nature; the keypoints above are not
        draw_frame(image, frame_pixels, signer)
        writer.write(image)
    writer.release()


# ============================================================================ corpus assembly

@dataclass(frozen=True)
class SizePreset:
    news: int
    sentences: dict  # split -> number of sentences
    isolated_per_sign: dict  # split -> samples per sign
    train_signers: int  # pool shared by news, train and dev
    test_signers: int  # unseen in news/train/dev


SIZES = {
    "tiny": SizePreset(48, {"train": 24, "dev": 8, "test": 8}, {"train": 1, "dev": 1, "test": 1}, 4, 2),
    "small": SizePreset(375, {"train": 200, "dev": 25, "test": 25}, {"train": 5, "dev": 1, "test": 2}, 8, 3),
    "default": SizePreset(1000, {"train": 800, "dev": 100, "test": 100}, {"train": 20, "dev": 3, "test": 5}, 8, 3),
}
SUBSET_CODES = {"news": 0, "sentences": 1, "isolated": 2}
SUBSETS = tuple(SUBSET_CODES)
SPLIT_CODES = {"train": 0, "dev": 1, "test": 2}
SIGNER_STREAM = 99
MAX_NEWS_SIGNS = 9


@dataclass
class Sample:
    name: str
    glosses: list  # English gloss ids, the signs performed
    gloss_words: list  # gloss words in the corpus language
    text: str
    signer: Signer


def sample_rng(seed, subset, split, index):
    """Independent generator per sample, so a sample depends only on (seed, subset, split, index)."""
    return np.random.default_rng([seed, SUBSET_CODES[subset], SPLIT_CODES[split], index])


def signer_pools(seed, preset):
    """Signers for news/train/dev (one pool) and for test (disjoint, unseen)."""
    def make(number):
        return sample_signer(np.random.default_rng([seed, SIGNER_STREAM, number]), f"signer_{number:02d}")

    known = [make(n) for n in range(preset.train_signers)]
    unseen = [make(n) for n in range(preset.train_signers, preset.train_signers + preset.test_signers)]
    return {"train": known, "dev": known, "test": unseen}


def news_clauses(rng, focus):
    """2-3 clauses, the first containing `focus`, at most MAX_NEWS_SIGNS signs in all."""
    clauses = [sample_clause_with(rng, focus)]
    target = int(rng.integers(2, 4))
    for _ in range(50):
        if len(clauses) == target:
            break
        clause = sample_clause(rng)
        if sum(len(clause_glosses(c)) for c in clauses + [clause]) <= MAX_NEWS_SIGNS:
            clauses.append(clause)
    return clauses


def plan_samples(subset, split, preset, signers, seed, lang):
    """Names, signs, targets and signers of one subset split (no poses yet), with their generators."""
    if subset == "news":
        count, prefix = preset.news, "news"
    elif subset == "sentences":
        count, prefix = preset.sentences[split], f"sent_{split}"
    else:
        count, prefix = preset.isolated_per_sign[split] * len(VOCABULARY), f"iso_{split}"
    plans = []
    for index in range(count):
        rng = sample_rng(seed, subset, split, index)
        signer = _pick(rng, signers)
        focus = VOCABULARY[index % len(VOCABULARY)].gloss  # cycling through the signs balances the subset
        if subset == "isolated":
            glosses, gloss_words, text = [focus], [], isolated_word(focus, lang)
        else:
            clauses = news_clauses(rng, focus) if subset == "news" else [sample_clause(rng)]
            gloss_words, text = render_clauses(clauses, lang)
            glosses = [g for clause in clauses for g in clause_glosses(clause)]
        plans.append((Sample(f"{prefix}_{index:05d}", glosses, gloss_words, text, signer), rng))
    return plans


def write_sample(sample, rng, subset_dir, videos):
    """Generate the poses of one sample and write its pose file (and video); returns its frame count."""
    clean = skeleton(utterance_controls(sample.glosses, sample.signer, rng), sample.signer, rng)  # (T, 133, 2)
    keypoints, scores = observe(clean, sample.signer, rng)
    write_pose_pkl(subset_dir / "pose_format" / f"{sample.name}.pkl", keypoints, scores)
    if videos:
        render_video(subset_dir / "rgb_format" / f"{sample.name}.mp4", clean, sample.signer)
    return len(clean)


def vocabulary_table(lang):
    return {
        sign.gloss: {
            "gloss": gloss_word(sign.gloss, lang), "word": isolated_word(sign.gloss, lang), "english": sign.english,
            "chinese": sign.chinese, "category": sign.category, "handshape": sign.handshape,
            "location": sign.location, "movement": sign.movement, "two_handed": sign.two_handed,
            "orientation": sign.orientation,
        }
        for sign in VOCABULARY
    }


def generate_corpus(out_dir, seed=0, lang="en", videos=False, size="default", subsets=SUBSETS):
    """Write the synthetic corpus under `out_dir` in the official layout; returns a summary dict.

    `subsets`: which of news, sentences, isolated to write (each is the same whichever others are written).

    Layout: sentences/labels.{train,dev,test} + sentences/pose_format/, isolated/labels.{train,dev,test} +
    isolated/pose_format/, news/labels.json + news/pose_format/, corpus.json; with `videos`, <subset>/rgb_format/.
    """
    if lang not in ("en", "zh"):
        raise ValueError(f"lang must be 'en' or 'zh', not {lang!r}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, not {seed}")
    if size not in SIZES:
        raise ValueError(f"size must be one of {sorted(SIZES)}, not {size!r}")
    if not subsets or set(subsets) - set(SUBSETS):
        raise ValueError(f"subsets must be a non-empty subset of {SUBSETS}, not {subsets!r}")
    started = time.perf_counter()
    out_dir, preset = Path(out_dir), SIZES[size]
    pools = signer_pools(seed, preset)
    jobs = [("news", "train")] + [(subset, split) for subset in ("sentences", "isolated") for split in SPLITS]
    jobs = [(subset, split) for subset, split in jobs if subset in subsets]
    counts, frames, sample_signers = {}, {}, {}
    for subset, split in jobs:
        plans = plan_samples(subset, split, preset, pools[split], seed, lang)
        lengths = [write_sample(sample, rng, out_dir / subset, videos) for sample, rng in plans]
        entries = [LabelEntry(s.name, s.text, " ".join(s.gloss_words), f"{s.name}.mp4", f"{s.name}.pkl")
                   for s, _ in plans]
        if subset == "news":
            write_csl_news_labels(out_dir / "news" / "labels.json", entries)
        else:
            write_official_labels(out_dir / subset / f"labels.{split}", entries, gloss_as_list=subset == "sentences")
        counts.setdefault(subset, {})[split] = len(plans)
        frames.setdefault(subset, {})[split] = (min(lengths), float(np.mean(lengths)), max(lengths))
        sample_signers.update({sample.name: sample.signer.signer_id for sample, _ in plans})

    metadata = {
        "seed": seed, "lang": lang, "size": size, "frame_size": [FRAME_SIZE, FRAME_SIZE], "fps": FPS,
        "videos": videos, "counts": counts,
        "signers": {"news": [s.signer_id for s in pools["train"]],
                    **{split: [s.signer_id for s in pools[split]] for split in SPLITS}},
        "signer_params": {s.signer_id: asdict(s) for s in pools["train"] + pools["test"]},
        "vocabulary": vocabulary_table(lang),
        "sample_signers": sample_signers,
    }
    (out_dir / "corpus.json").write_text(json.dumps(metadata, ensure_ascii=False, indent=1), encoding="utf-8")
    return {"out_dir": str(out_dir), "seed": seed, "lang": lang, "size": size, "videos": videos,
            "counts": counts, "frames": frames, "vocabulary_size": len(VOCABULARY),
            "seconds": time.perf_counter() - started}


def format_summary(summary):
    """A short text table of a `generate_corpus` summary."""
    lines = [f"synthetic corpus in {summary['out_dir']} (seed {summary['seed']}, lang {summary['lang']}, "
             f"size {summary['size']}, {summary['vocabulary_size']} signs, {summary['seconds']:.1f} s)",
             f"{'subset':<10} {'split':<6} {'samples':>7} {'frames min/mean/max':>20}"]
    for subset, splits in summary["counts"].items():
        for split, count in splits.items():
            low, mean, high = summary["frames"][subset][split]
            lines.append(f"{subset:<10} {split:<6} {count:>7} {f'{low}/{mean:.1f}/{high}':>20}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Write the synthetic sign corpus in the official Uni-Sign layout.")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lang", choices=("en", "zh"), default="en", help="language of glosses and translations")
    parser.add_argument("--videos", action="store_true", help="also render <subset>/rgb_format/<name>.mp4")
    parser.add_argument("--size", choices=tuple(SIZES), default="default")
    parser.add_argument("--subsets", default=",".join(SUBSETS),
                        help="comma-separated subsets to write (default: all of %(default)s)")
    args = parser.parse_args(argv)
    subsets = tuple(name.strip() for name in args.subsets.split(",") if name.strip())
    print(format_summary(generate_corpus(args.out, args.seed, args.lang, args.videos, args.size, subsets)))


if __name__ == "__main__":
    main()
