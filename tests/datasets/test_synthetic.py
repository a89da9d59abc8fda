"""Tests of the synthetic sign corpus (datasets/synthetic.py), on the tiny size preset."""
import gzip
import itertools
import json
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from datasets import synthetic
from datasets.formats import read_labels, read_pose_file, resolve_pose_path
from datasets.synthetic import Clause, NounPhrase

REPO_ROOT = Path(__file__).resolve().parents[2]
SUBSET_LABELS = {
    "sentences": [f"sentences/labels.{split}" for split in synthetic.SPLITS],
    "isolated": [f"isolated/labels.{split}" for split in synthetic.SPLITS],
    "news": ["news/labels.json"],
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny_en")
    return out, synthetic.generate_corpus(out, seed=0, size="tiny")


@pytest.fixture(scope="module")
def corpus_zh(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny_zh")
    synthetic.generate_corpus(out, seed=0, lang="zh", size="tiny")
    return out


def load_all(root, subset):
    """[(entry, PoseClip)] of every split of a subset, loaded through the official readers."""
    samples = []
    for label_file in SUBSET_LABELS[subset]:
        for entry in read_labels(root / label_file):
            samples.append((entry, read_pose_file(resolve_pose_path(root / subset / "pose_format", entry))))
    return samples


def metadata(root):
    return json.loads((root / "corpus.json").read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------- the language


def test_every_sign_differs_from_every_other_in_at_least_two_form_features():
    assert 35 <= len(synthetic.VOCABULARY) <= 50
    assert len(synthetic.SIGNS) == len(synthetic.VOCABULARY)  # unique glosses
    for a, b in itertools.combinations(synthetic.VOCABULARY, 2):
        differences = sum(x != y for x, y in zip(a.form(), b.form()))
        assert differences >= 2, f"{a.gloss} and {b.gloss} differ in only {differences} of handshape/location/movement/hands"
    for sign in synthetic.VOCABULARY:
        assert sign.handshape in synthetic.HANDSHAPES and sign.location in synthetic.LOCATIONS
        assert sign.movement in synthetic.MOVEMENTS and sign.orientation in synthetic.ORIENTATIONS


def test_translation_reorders_the_glosses():
    clause = Clause("statement", NounPhrase("I"), "GO", NounPhrase("STORE"), time="TOMORROW")
    assert synthetic.clause_glosses(clause) == ["TOMORROW", "I", "STORE", "GO"]
    assert synthetic.english_sentence(clause) == "I will go to the store tomorrow."
    assert synthetic.chinese_sentence(clause) == "我明天去商店。"
    assert synthetic.render_clauses([clause], "zh")[0] == ["明天", "我", "商店", "去"]


@pytest.mark.parametrize(
    "clause, english, chinese",
    [
        (Clause("statement", NounPhrase("TEACHER", possessed=True), "BUY", NounPhrase("BOOK", adjective="NEW"),
                time="YESTERDAY", negated=True),
         "My teacher did not buy the new book yesterday.", "我的老师昨天没买新书。"),
        (Clause("statement", NounPhrase("HE"), "EAT", NounPhrase("APPLE"), time="YESTERDAY"),
         "He ate the apple yesterday.", "他昨天吃了苹果。"),
        (Clause("description", NounPhrase("CAR"), predicate="BIG", negated=True), "The car is not big.", "车不大。"),
        (Clause("what", NounPhrase("YOU"), "DRINK", time="EVERYDAY"), "What do you drink every day?", "你每天喝什么？"),
        (Clause("where", NounPhrase("HE"), "GO"), "Where does he go?", "他去哪里？"),
        (Clause("who", verb="READ", obj=NounPhrase("BOOK"), time="TOMORROW"), "Who will read the book tomorrow?",
         "谁明天读书？"),
    ],
)
def test_clause_translations(clause, english, chinese):
    assert synthetic.english_sentence(clause) == english
    assert synthetic.chinese_sentence(clause) == chinese


def test_sampled_clauses_have_2_to_8_signs():
    rng = np.random.default_rng(0)
    lengths = [len(synthetic.clause_glosses(synthetic.sample_clause(rng))) for _ in range(2000)]
    assert min(lengths) == 2 and max(lengths) <= 8


def test_news_covers_the_whole_vocabulary():
    preset = synthetic.SIZES["tiny"]
    signers = synthetic.signer_pools(0, preset)["train"]
    plans = synthetic.plan_samples("news", "train", preset, signers, seed=0, lang="en")
    covered = {gloss for sample, _ in plans for gloss in sample.glosses}
    assert covered == set(synthetic.SIGNS)


# ----------------------------------------------------------------------------- skeleton


def test_hand_wrists_coincide_with_body_wrists_before_detector_noise():
    rng = np.random.default_rng(0)
    signer = synthetic.sample_signer(rng, "s")
    clean = synthetic.skeleton(synthetic.utterance_controls(["WHAT", "TEACHER", "GO"], signer, rng), signer, rng)
    assert clean.shape[1:] == (133, 2)
    np.testing.assert_allclose(clean[:, 112], clean[:, 10])  # right hand root = right wrist
    np.testing.assert_allclose(clean[:, 91], clean[:, 9])  # left
    assert (clean[:, 6, 0] < clean[:, 5, 0]).all()  # the right shoulder appears on the image left
    assert (clean[:, 0, 1] < clean[:, 5, 1]).all()  # nose above the shoulders


def test_signs_move_the_dominant_hand_to_their_location():
    rng = np.random.default_rng(0)
    signer = synthetic.sample_signer(rng, "s")

    def mean_right_hand(gloss):
        controls = synthetic.sign_controls(synthetic.SIGNS[gloss], 8, signer, rng, synthetic.rest_controls(8, rng))
        return synthetic.skeleton(controls, signer, rng)[:, 112:133].mean(axis=(0, 1))  # (2,)

    assert mean_right_hand("TEACHER")[1] < mean_right_hand("EAT")[1] < mean_right_hand("I")[1]  # forehead, chin, chest
    assert mean_right_hand("HE")[0] < mean_right_hand("I")[0]  # side of the body vs chest (right hand: image left)


# ----------------------------------------------------------------------------- written corpus


def test_tiny_generates_quickly_and_reports_counts(corpus):
    _, summary = corpus
    assert summary["seconds"] < 5
    assert summary["counts"]["sentences"] == {"train": 24, "dev": 8, "test": 8}
    assert summary["counts"]["isolated"]["train"] == len(synthetic.VOCABULARY)
    assert summary["counts"]["news"]["train"] == 48
    assert "sentences" in synthetic.format_summary(summary)


def test_layout_loads_through_the_official_readers(corpus):
    root, summary = corpus
    frame_limits = {"isolated": (6, 24), "sentences": (12, 100), "news": (25, 130)}
    for subset, (shortest, longest) in frame_limits.items():
        samples = load_all(root, subset)
        assert len(samples) == sum(summary["counts"][subset].values())
        for entry, clip in samples:
            assert clip.keypoints.shape == (clip.num_frames, 133, 2) and clip.scores.shape == (clip.num_frames, 133)
            assert shortest <= clip.num_frames <= longest, (entry.name, clip.num_frames)
            assert clip.keypoints.min() >= 0 and clip.keypoints.max() <= 1
            assert clip.scores.min() >= 0 and clip.scores.max() <= 1


def test_pose_files_use_the_official_per_frame_lists(corpus):
    root, _ = corpus
    with open(root / "sentences" / "pose_format" / "sent_train_00000.pkl", "rb") as handle:
        data = pickle.load(handle)  # our own file, written by formats.write_pose_pkl
    assert set(data) == {"keypoints", "scores"}
    assert data["keypoints"][0].shape == (1, 133, 2) and data["keypoints"][0].dtype == np.float32
    assert data["scores"][0].shape == (1, 133)


def test_label_fields(corpus):
    root, _ = corpus
    vocabulary = metadata(root)["vocabulary"]
    with gzip.open(root / "sentences" / "labels.train", "rb") as handle:
        raw = pickle.load(handle)
    for name, record in raw.items():
        assert record["name"] == name and record["video_path"] == f"{name}.mp4"
        assert isinstance(record["gloss"], list) and 2 <= len(record["gloss"]) <= 8
        assert all(word in synthetic.SIGNS for word in record["gloss"])
        assert record["text"][0].isupper() and record["text"][-1] in ".?"
    words = {entry["word"] for entry in vocabulary.values()}
    for entry in read_labels(root / "isolated" / "labels.dev"):
        assert entry.gloss == "" and entry.text in words and entry.text == entry.text.lower()
    news = json.loads((root / "news" / "labels.json").read_text(encoding="utf-8"))
    for record in news:
        assert set(record) == {"video", "pose", "text"}
        assert record["pose"] == record["video"].replace(".mp4", ".pkl")
    assert max(len(re.findall(r"[.?]", record["text"])) for record in news) >= 2  # multi-sentence items


def test_gloss_order_differs_from_word_order_in_some_sentences(corpus):
    root, _ = corpus
    vocabulary = metadata(root)["vocabulary"]
    reordered = 0
    for entry in read_labels(root / "sentences" / "labels.train"):
        text = entry.text.lower()
        positions = [text.find(vocabulary[gloss]["english"]) for gloss in entry.gloss.split()]
        positions = [position for position in positions if position >= 0]
        reordered += positions != sorted(positions)
    assert reordered >= 5


def test_test_signers_are_unseen(corpus):
    root, _ = corpus
    meta = metadata(root)
    train_pool = set(meta["signers"]["train"]) | set(meta["signers"]["news"]) | set(meta["signers"]["dev"])
    assert train_pool.isdisjoint(meta["signers"]["test"])
    for name, signer in meta["sample_signers"].items():
        pool = meta["signers"]["test"] if "_test_" in name else meta["signers"]["train"]
        assert signer in pool, name
    assert len(meta["signer_params"]) == len(train_pool) + len(meta["signers"]["test"])


def test_detector_noise_includes_low_confidence_and_missing_hands(corpus):
    root, _ = corpus
    low_confidence = missing = frames = 0
    all_scores = []
    for _, clip in load_all(root, "sentences") + load_all(root, "news"):
        for hand in (slice(91, 112), slice(112, 133)):
            scores, points = clip.scores[:, hand], clip.keypoints[:, hand]
            missing += int(((scores == 0).all(axis=1) & (points == 0).all(axis=(1, 2))).sum())
            low_confidence += int(((scores > 0) & (scores < 0.3)).all(axis=1).sum())
        frames += clip.num_frames
        all_scores.append(clip.scores[:, :91])
    assert 0 < missing < 0.1 * frames and 0 < low_confidence < 0.2 * frames
    upper_body_face = np.concatenate(all_scores)[:, list(range(0, 17)) + list(range(23, 91))]
    assert np.median(upper_body_face) > 0.7


def test_same_seed_gives_identical_files(corpus, tmp_path):
    root, _ = corpus
    synthetic.generate_corpus(tmp_path, seed=0, size="tiny")
    files = sorted(path.relative_to(root) for path in root.rglob("*") if path.is_file())
    assert files == sorted(path.relative_to(tmp_path) for path in tmp_path.rglob("*") if path.is_file())
    for relative in files:
        first, second = (root / relative).read_bytes(), (tmp_path / relative).read_bytes()
        if relative.name.startswith("labels.") and relative.suffix != ".json":
            # The gzip header stores a modification time (bytes 4-8), set by formats.write_official_labels.
            first, second = first[:4] + first[8:], second[:4] + second[8:]
        assert first == second, relative


def test_different_seed_gives_different_corpus(corpus, tmp_path):
    root, _ = corpus
    synthetic.generate_corpus(tmp_path, seed=1, size="tiny")
    texts = [[entry.text for entry in read_labels(base / "sentences" / "labels.train")] for base in (root, tmp_path)]
    assert texts[0] != texts[1]
    first, second = (read_pose_file(base / "isolated" / "pose_format" / "iso_train_00000.pkl") for base in (root, tmp_path))
    assert first.keypoints.shape != second.keypoints.shape or not np.allclose(first.keypoints, second.keypoints)


def test_chinese_variant(corpus_zh):
    root = corpus_zh
    cjk = re.compile(r"[\u4e00-\u9fff]")
    entries = read_labels(root / "sentences" / "labels.train")
    for entry in entries:
        assert entry.text[-1] in "。？" and cjk.search(entry.text)
        assert all(cjk.search(word) for word in entry.gloss.split())
    assert any(entry.gloss.replace(" ", "") not in entry.text for entry in entries)  # reordered
    chinese_words = {sign.chinese for sign in synthetic.VOCABULARY}
    assert all(entry.text in chinese_words for entry in read_labels(root / "isolated" / "labels.test"))
    assert metadata(root)["lang"] == "zh"
    news = json.loads((root / "news" / "labels.json").read_text(encoding="utf-8"))
    assert all(cjk.search(record["text"]) for record in news)


def test_rendered_videos_decode_with_one_frame_per_pose_frame(tmp_path):
    decord = pytest.importorskip("decord")
    preset = synthetic.SIZES["tiny"]
    signers = synthetic.signer_pools(0, preset)["test"]
    plans = synthetic.plan_samples("sentences", "test", preset, signers, seed=0, lang="en")[:2]
    plans += synthetic.plan_samples("isolated", "test", preset, signers, seed=0, lang="en")[:1]
    for sample, rng in plans:
        frames = synthetic.write_sample(sample, rng, tmp_path, videos=True)
        clip = read_pose_file(tmp_path / "pose_format" / f"{sample.name}.pkl")
        video = decord.VideoReader(str(tmp_path / "rgb_format" / f"{sample.name}.mp4"))
        assert len(video) == frames == clip.num_frames
        image = video[frames // 2].asnumpy()  # (256, 256, 3) RGB
        assert image.shape == (synthetic.FRAME_SIZE, synthetic.FRAME_SIZE, 3)
        background = np.array(sample.signer.background_colour[::-1])
        middle = frames // 2
        if clip.scores[middle, 112:133].mean() > 0.3:  # the right hand is drawn where its keypoints are
            x0, y0 = (clip.keypoints[middle, 112:133].min(axis=0) * synthetic.FRAME_SIZE).astype(int)
            x1, y1 = (clip.keypoints[middle, 112:133].max(axis=0) * synthetic.FRAME_SIZE).astype(int) + 1
            crop = image[y0:y1, x0:x1].reshape(-1, 3).astype(int)
            assert (np.abs(crop - background).sum(axis=1) > 60).mean() > 0.3


def test_cli_writes_a_tiny_corpus(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "datasets.synthetic", "--out", str(tmp_path), "--size", "tiny", "--lang", "zh",
         "--seed", "3"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "sentences" in result.stdout and "isolated" in result.stdout
    meta = metadata(tmp_path)
    assert (meta["seed"], meta["lang"], meta["size"]) == (3, "zh", "tiny")
    assert len(read_labels(tmp_path / "sentences" / "labels.test")) == 8


@pytest.mark.parametrize("arguments", [{"lang": "fr"}, {"size": "huge"}, {"seed": -1}])
def test_invalid_arguments_are_refused(tmp_path, arguments):
    with pytest.raises(ValueError):
        synthetic.generate_corpus(tmp_path, **arguments)


def test_a_subset_alone_is_written_as_in_the_whole_corpus(tmp_path):
    synthetic.generate_corpus(tmp_path / "all", seed=0, size="tiny")
    synthetic.generate_corpus(tmp_path / "isolated_only", seed=0, size="tiny", subsets=("isolated",))
    assert not (tmp_path / "isolated_only" / "news").exists()
    for name in ("labels.train", "labels.test", "pose_format/iso_train_00007.pkl"):
        assert (tmp_path / "isolated_only" / "isolated" / name).read_bytes() == \
            (tmp_path / "all" / "isolated" / name).read_bytes()
    with pytest.raises(ValueError, match="subsets"):
        synthetic.generate_corpus(tmp_path / "bad", size="tiny", subsets=("words",))
