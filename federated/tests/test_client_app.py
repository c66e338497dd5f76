"""What a hospital's ClientApp sends back, checked with the real binary.

Run with the Flower environment's Python from the ``federated`` folder:
``OSTEO_EDC_BIN=... python -m unittest discover -s tests -t .``
(``tests/tests/federated.rs`` does).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import unittest
from pathlib import Path

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, RecordDict

from osteo_fl import client_app, weights


class WhatLeavesTheSite(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.binary = os.environ["OSTEO_EDC_BIN"]
        cls.dir = tempfile.TemporaryDirectory()
        root = Path(cls.dir.name)
        subprocess.run(
            [cls.binary, "model", "phantoms", "--n", "16", "--seed", "9", "--width", "32", "--height", "40",
             "--out", str(root / "site")],
            check=True, capture_output=True,
        )
        subprocess.run(
            [cls.binary, "model", "fl-init", "--out", str(root / "global.safetensors"),
             "--image-size", "32", "--channels", "4,8"],
            check=True, capture_output=True,
        )
        cls.arrays, cls.metadata = weights.read(root / "global.safetensors")
        cls.context = Context(
            run_id=1, node_id=7,
            node_config={"manifest": str(root / "site" / "manifest.csv"), "images": str(root / "site"),
                         "work-dir": str(root / "work"), "osteo-edc": cls.binary},
            state=RecordDict(), run_config={},
        )

    @classmethod
    def tearDownClass(cls) -> None:
        cls.dir.cleanup()

    def message(self, arrays: ArrayRecord) -> RecordDict:
        """The content of a round's message, as the ServerApp's strategy sends it."""
        config = ConfigRecord({"local-epochs": 1, "batch-size": 4, "learning-rate": 0.002,
                               "server-round": 1, "proximal-mu": 0.1,
                               "net-config": self.metadata[weights.NET_CONFIG_KEY]})
        return RecordDict({"arrays": arrays, "config": config})

    def test_a_training_reply_holds_only_the_weights_and_the_metric_record(self) -> None:
        reply = client_app.train_round(self.message(self.arrays), self.context)
        self.assertEqual(set(reply.keys()), {"arrays", "metrics"})
        self.assertEqual(set(reply["metrics"].keys()), set(client_app.TRAIN_METRICS))
        for value in reply["metrics"].values():
            self.assertIsInstance(value, (int, float), "numbers only: no case identifier, no row")
        self.assertEqual(weights.layout(reply["arrays"]), weights.layout(self.arrays))
        changed = any(
            not np.array_equal(reply["arrays"][n].numpy(), self.arrays[n].numpy()) for n in self.arrays.keys()
        )
        self.assertTrue(changed, "local training moved the weights")
        self.assertGreater(reply["metrics"]["num-examples"], 0)
        sent = json.loads((Path(self.dir.name) / "work" / "sent-round-1.json").read_text())
        self.assertEqual(sent["num_examples"], reply["metrics"]["num-examples"])

    def test_an_evaluation_reply_holds_only_the_metric_record(self) -> None:
        reply = client_app.evaluate_round(self.message(self.arrays), self.context)
        self.assertEqual(set(reply.keys()), {"metrics"})
        self.assertEqual(set(reply["metrics"].keys()), set(client_app.EVALUATE_METRICS))

    def test_weights_of_another_layout_are_refused_on_both_sides(self) -> None:
        # Python side: a tensor missing, or of another shape.
        names = sorted(self.arrays.keys())
        fewer = ArrayRecord({n: self.arrays[n] for n in names[1:]})
        with self.assertRaises(weights.LayoutError) as e:
            weights.check_same_layout(fewer, self.arrays, "the reply")
        self.assertIn("missing", str(e.exception))
        # Rust side: the binary refuses a file whose tensors do not fit.
        with self.assertRaises(RuntimeError) as e:
            client_app.train_round(self.message(fewer), self.context)
        self.assertIn("do not match", str(e.exception))


if __name__ == "__main__":
    unittest.main()
