"""The README's settings table is the settings model's, field for field (K10)."""

from deposits.settings import Settings
from deposits.settings_doc import README, WHAT, readme_table, settings_table


def test_every_setting_has_a_description_and_none_is_stale():
    assert set(WHAT) == set(Settings.model_fields)


def test_the_readme_table_matches_the_settings_model():
    assert readme_table(README.read_text()) == settings_table(), (
        "README.md is stale: run python -m deposits.settings_doc --write"
    )


def test_the_table_never_prints_a_secret_default():
    text = settings_table()
    for name, field in Settings.model_fields.items():
        default = field.default
        if hasattr(default, "get_secret_value"):
            assert default.get_secret_value() not in text, name
