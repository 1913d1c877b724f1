"""How to recognise TensorFlow's C++ start-up lines in captured output."""

#: What TensorFlow's C++ core writes while starting (absl, oneDNN, CUDA without a driver;
#: TensorFlow 2.16 may write only the last).
TENSORFLOW_START_UP = ("absl::InitializeLog", "oneDNN custom operations", "cuInit",
                       "Could not find cuda drivers")


def start_up_lines_in(text: str) -> list[str]:
    """The markers of :data:`TENSORFLOW_START_UP` that ``text`` contains."""
    return [marker for marker in TENSORFLOW_START_UP if marker in text]
