"""Placeholder: the batch poller (owned by the batches helper)."""


class BatchPoller:
    def __init__(self, app: object) -> None:
        self.app = app

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def refresh_now(self) -> None:
        pass

    def watch(self, batch_id: str) -> None:
        pass
