"""The experiments of the chapters: the grid runner and its workers, each chapter's experiments, plotting."""
