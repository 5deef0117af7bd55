# GPU training image. Build: docker build -t unet-industrial .
# Run:   docker run --gpus all -v DATA:/data -v "$PWD/runs:/workspace/runs" unet-industrial JOB --flags...
# JOB is any job of the unet-industrial router, unet_industrial/__main__.py (prepare and synthetic too).
FROM tensorflow/tensorflow:2.21.0-gpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2

WORKDIR /workspace

# The pinned dependencies first, in a layer of their own that code changes do not rebuild.
COPY requirements.txt .
RUN python -m pip install --no-cache-dir -r requirements.txt

# The package itself, without dependencies (the layer above installed them):
# it brings the unet-industrial job router and the shipped detector.
COPY pyproject.toml README.md ./
COPY unet_industrial/ unet_industrial/
COPY data_pipeline/ data_pipeline/
RUN python -m pip install --no-cache-dir --no-deps .

# Jobs run as an ordinary user; runs/ is where they write (mount it to keep results).
RUN useradd --create-home --uid 1000 trainer \
    && mkdir -p runs \
    && chown trainer:trainer runs
USER 1000:1000

ENTRYPOINT ["unet-industrial"]
CMD ["train", "--helpshort"]
