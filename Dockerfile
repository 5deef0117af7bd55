# GPU training image. Build: docker build -t unet-industrial .
# Run:   docker run --gpus all -v DATA:/data -v "$PWD/runs:/workspace/runs" unet-industrial train --flags...
FROM tensorflow/tensorflow:2.21.0-gpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2

WORKDIR /workspace

COPY requirements.txt .
RUN python -m pip install --no-cache-dir -r requirements.txt

COPY unet_industrial/ unet_industrial/
COPY data_pipeline/ data_pipeline/

# Jobs run as an ordinary user; runs/ is where they write (mount it to keep results).
RUN useradd --create-home --uid 1000 trainer \
    && mkdir -p runs \
    && chown trainer:trainer runs
USER 1000:1000

ENTRYPOINT ["python", "-m", "unet_industrial"]
CMD ["train", "--helpshort"]
