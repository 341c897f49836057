"""Usage reports as asynchronous jobs: requests (`requests.py`), job states in the warehouse (`store.py`),
the report's content (`content.py`), its files (`files.py`, `pdf.py`) and the report worker (`worker.py`)."""
