"""Month and weekday names, written once for every pattern that looks for dates."""

MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip
# As news copy abbreviates them.
MONTH_ABBREVIATIONS = ("Jan.", "Feb.", "Mar.", "Apr.", "Jun.", "Jul.", "Aug.", "Sept.", "Sep.",
                       "Oct.", "Nov.", "Dec.")  # fmt: skip
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def alternatives(words: tuple[str, ...], lower: bool = False) -> str:
    """`words` as a regex alternation, dots escaped."""
    return "|".join((word.lower() if lower else word).replace(".", "\\.") for word in words)
