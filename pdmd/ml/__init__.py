"""The CNN potential on PD images: model, data, training, prediction, plots."""
