"""The pure rules of the job side: grouping by character, the Phase 2 dataset composition,
derived names."""

from __future__ import annotations

import pytest

from loraflow.contracts.jobs import ReferenceImage, character_lora_name, compose_dataset, group_references


def test_groups_by_character_in_order_of_first_appearance_without_duplicates() -> None:
    refs = [
        ReferenceImage("b", "u1"),
        ReferenceImage("a", "u2"),
        ReferenceImage("b", "u3"),
        ReferenceImage("b", "u1"),
    ]
    assert group_references(refs) == [("b", ["u1", "u3"]), ("a", ["u2"])]


@pytest.mark.parametrize(
    ("uploaded", "expected"),
    [
        (7, ["up0", "up1", "up2", "up3", "up4", "up5", "up6"]),  # 5+: the user's alone
        (5, ["up0", "up1", "up2", "up3", "up4"]),
        (4, ["up0", "up1", "up2", "up3", "gen0"]),  # 3-4: plus 1-2 generated
        (3, ["up0", "up1", "up2", "gen0", "gen1"]),
        (0, ["gen0", "gen1", "gen2", "gen3", "gen4", "gen5"]),  # none: generated only
    ],
)
def test_dataset_composition(uploaded: int, expected: list[str]) -> None:
    generated = [f"gen{i}" for i in range(6)]
    assert compose_dataset([f"up{i}" for i in range(uploaded)], generated) == expected


def test_at_most_ten_images() -> None:
    assert len(compose_dataset([], [f"g{i}" for i in range(14)])) == 10
    assert len(compose_dataset([f"u{i}" for i in range(12)], [])) == 10


def test_names_derive_from_the_given_name() -> None:
    assert character_lora_name("Hero", "char1", 0) == "Hero"
    assert character_lora_name("Hero", "char2", 1) == "Hero (char2)"
    assert len(character_lora_name("x" * 255, "char2", 1)) == 255
