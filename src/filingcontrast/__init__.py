"""filingcontrast: contrastive instruction fine-tuning on SEC 8-K filings."""

__version__ = "0.1.0"
