"""ClientApp: no training, every parameter + step (net_bench's ShiftBackend)."""

import numpy as np
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

app = ClientApp()


@app.train()
def train(msg: Message, context: Context) -> Message:
    step = np.float32(context.run_config["step"])
    arrays = msg.content["arrays"].to_numpy_ndarrays()
    updated = [a + step for a in arrays]
    content = RecordDict(
        {
            "arrays": ArrayRecord(updated),
            "metrics": MetricRecord({"num-examples": 1}),
        }
    )
    return Message(content=content, reply_to=msg)
