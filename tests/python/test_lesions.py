"""The synthetic lesion generator: determinism, variation, and classes that pixels can tell apart."""

import hashlib
import unittest

import numpy as np

from dermcds_export import lesions


def render(seed, index, label, size=(160, 160), hair=True):
    return lesions.render_lesion(lesions.sample_rng(seed, index), label, size, hair)


def colour_features(image):
    """Simple pixel statistics of the central disc, independent of the generator's internals."""
    a = np.asarray(image, dtype=np.float64)
    h, w, _ = a.shape
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot(yy - h / 2, xx - w / 2) / (min(h, w) / 2)
    centre = a[r < 0.6]
    red, green, blue = centre[:, 0], centre[:, 1], centre[:, 2]
    lum = centre.mean(1)
    skin = np.median(a[r > 0.85], axis=0)
    return {
        "mean_r": red.mean(), "mean_g": green.mean(), "mean_b": blue.mean(), "lum_std": lum.std(),
        "dark": (lum < 70).mean(),
        "blue_grey": ((blue > red - 15) & (lum < 150)).mean(),
        "red": ((red > 140) & (green < 90)).mean(),
        "whitish": ((lum > 190) & (red - blue < 60)).mean(),
        "differs_from_skin": (np.abs(centre - skin).sum(1) > 60).mean(),
    }


def dataset_features(seed, count):
    feats, labels = [], []
    for index, label in enumerate(lesions.dataset_labels(seed, count)):
        image, _ = render(seed, index, label)
        feats.append(colour_features(image))
        labels.append(label)
    return feats, labels


class DeterminismTest(unittest.TestCase):
    def test_same_seed_and_index_give_identical_pixels(self):
        for label in lesions.LABELS:
            a, info_a = render(7, 3, label, size=None)
            b, info_b = render(7, 3, label, size=None)
            self.assertEqual(a.tobytes(), b.tobytes(), label)
            self.assertEqual(info_a, info_b)

    def test_different_index_or_seed_gives_a_different_image(self):
        a, _ = render(7, 3, "NV")
        b, _ = render(7, 4, "NV")
        c, _ = render(8, 3, "NV")
        self.assertNotEqual(a.tobytes(), b.tobytes())
        self.assertNotEqual(a.tobytes(), c.tobytes())

    def test_generate_does_not_depend_on_batching(self):
        whole = [im.tobytes() for im, _ in lesions.generate(5, 6, size=(96, 96))]
        labels = lesions.dataset_labels(5, 6)
        single = render(5, 4, labels[4], size=(96, 96))[0].tobytes()
        self.assertEqual(whole[4], single)

    def test_pinned_digest(self):
        # Guards against an unnoticed change of the generator: demo checkpoints, validation sets
        # and export checks are all keyed on its output. Update deliberately with the generator.
        # Recorded with Debian 12's numpy 1.24.2 and Pillow 9.4.0.
        image, _ = render(2019, 0, "MEL", size=(64, 48))
        self.assertEqual(image.size, (64, 48))
        self.assertEqual(hashlib.sha256(image.tobytes()).hexdigest(),
                         "9b91bc38547ceaf6939e68d94435af25c19cafa0c6d78ad391319bae88b72bc9")


class VariationTest(unittest.TestCase):
    def test_balanced_labels_in_seeded_order(self):
        labels = lesions.dataset_labels(1, 40)
        self.assertEqual(sorted(set(labels)), sorted(lesions.LABELS))
        self.assertTrue(all(labels.count(code) == 5 for code in lesions.LABELS))
        self.assertNotEqual(labels, lesions.dataset_labels(2, 40))
        self.assertNotEqual(labels[:8], list(lesions.LABELS), "order is shuffled, not cyclic")

    def test_canvas_sizes_and_aspect_ratios_vary(self):
        sizes = [render(3, i, "NV", size=None)[0].size for i in range(16)]
        self.assertGreater(len(set(sizes)), 10)
        self.assertTrue(any(w > h for w, h in sizes) and any(h > w for w, h in sizes))
        self.assertTrue(any(min(w, h) < 380 for w, h in sizes) and any(min(w, h) > 400 for w, h in sizes),
                        "images both below and above the B4 resize size, so resizing goes both ways")

    def test_skin_tone_hair_and_geometry_vary(self):
        infos = [render(4, i, "BKL")[1] for i in range(24)]
        self.assertGreater(len({i.skin_tone for i in infos}), 20)
        self.assertTrue(any(i.hairs > 0 for i in infos) and any(i.hairs == 0 for i in infos))
        self.assertGreater(np.std([i.radius for i in infos]), 0.01)

    def test_rejects_unknown_class_and_tiny_canvas(self):
        with self.assertRaisesRegex(ValueError, "unknown lesion class 'XYZ'"):
            render(1, 0, "XYZ")
        with self.assertRaisesRegex(ValueError, "too small"):
            render(1, 0, "NV", size=(8, 100))


class ClassFeaturesTest(unittest.TestCase):
    """The drawn features follow the class rules of docs/synthetic-lesions.md."""

    @classmethod
    def setUpClass(cls):
        cls.infos = {code: [render(11, i, code, size=(96, 96))[1] for i in range(12)] for code in lesions.LABELS}

    def mean(self, code, field):
        return float(np.mean([getattr(i, field) for i in self.infos[code]]))

    def test_melanoma_is_asymmetric_irregular_large_and_multicoloured(self):
        for info in self.infos["MEL"]:
            self.assertGreaterEqual(len(info.colours), 3)
            self.assertTrue(set(info.colours) & {lesions._BLACK, lesions._BLUE_GREY})
        self.assertGreater(self.mean("MEL", "asymmetry"), 3 * self.mean("NV", "asymmetry"))
        self.assertGreater(self.mean("MEL", "irregularity"), 3 * self.mean("NV", "irregularity"))
        self.assertGreater(self.mean("MEL", "radius"), self.mean("NV", "radius"))

    def test_nevus_has_one_colour_and_dermatofibroma_is_smallest(self):
        self.assertTrue(all(len(i.colours) == 1 for i in self.infos["NV"]))
        small = self.mean("DF", "radius")
        self.assertTrue(all(small < self.mean(code, "radius") for code in lesions.LABELS if code != "DF"))

    def test_actinic_keratosis_has_the_most_ill_defined_border(self):
        ak = self.mean("AK", "edge_width")
        self.assertTrue(all(ak > 1.5 * self.mean(code, "edge_width") for code in lesions.LABELS if code != "AK"))

    def test_structures(self):
        self.assertIn("arborizing_vessels", self.infos["BCC"][0].structures)
        self.assertIn("central_white_patch", self.infos["DF"][0].structures)
        self.assertIn("keratin_crust", self.infos["SCC"][0].structures)
        self.assertIn("milia_like_cysts", self.infos["BKL"][0].structures)
        self.assertIn("red_purple_lobules", self.infos["VASC"][0].structures)
        self.assertIn("scale", self.infos["AK"][0].structures)


class SeparabilityTest(unittest.TestCase):
    """Classes differ in plain pixel statistics, so a network can learn them from the images."""

    @classmethod
    def setUpClass(cls):
        cls.train = dataset_features(1, 160)
        cls.test = dataset_features(2, 80)

    def by_class(self, feature):
        feats, labels = self.train
        return {code: np.mean([f[feature] for f, l in zip(feats, labels) if l == code]) for code in lesions.LABELS}

    def test_nearest_centroid_on_colour_statistics_beats_chance_by_far(self):
        names = sorted(self.train[0][0])
        x = np.array([[f[n] for n in names] for f in self.train[0]])
        y = np.array([lesions.label_index(label) for label in self.train[1]])
        xt = np.array([[f[n] for n in names] for f in self.test[0]])
        yt = np.array([lesions.label_index(label) for label in self.test[1]])
        mu, sd = x.mean(0), x.std(0) + 1e-9
        centroids = np.array([((x - mu) / sd)[y == k].mean(0) for k in range(len(lesions.LABELS))])
        distances = ((((xt - mu) / sd)[:, None, :] - centroids[None]) ** 2).sum(-1)
        predicted = np.argmin(distances, axis=1)
        accuracy = float((predicted == yt).mean())
        self.assertGreater(accuracy, 0.45, f"nearest-centroid accuracy {accuracy:.2f} (chance 0.125)")

    def test_melanoma_has_the_most_dark_and_blue_grey_pixels(self):
        dark, blue = self.by_class("dark"), self.by_class("blue_grey")
        self.assertEqual(max(dark, key=dark.get), "MEL")
        self.assertEqual(max(blue, key=blue.get), "MEL")

    def test_vessels_make_bcc_and_vasc_redder_than_nevi(self):
        red = self.by_class("red")
        self.assertGreater(red["BCC"], 3 * red["NV"])
        self.assertGreater(red["VASC"], 3 * red["NV"])

    def test_dermatofibroma_covers_the_least_area_and_melanoma_the_most(self):
        area = self.by_class("differs_from_skin")
        self.assertEqual(min(area, key=area.get), "DF")
        self.assertEqual(max(area, key=area.get), "MEL")


if __name__ == "__main__":
    unittest.main()
