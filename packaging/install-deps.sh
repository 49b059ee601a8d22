#!/bin/sh
# Installs every Debian 12 package needed to build, test and run gst-florence2.
# Idempotent: apt-get skips what is already installed.
set -eu
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# Beyond the build: H.264 encoders/decoders (plugins-ugly x264enc, plugins-bad
# openh264) for the examples and RTSP tests, PyGObject for read-metadata.py,
# debhelper for packaging/build-deb.sh; the mosquitto broker, its clients and
# openssl for the florence2publish tests (which start their own broker);
# spirv-tools checks the shaders lavapipe cannot run (cooperative matrices).
$SUDO apt-get install -y -q --no-install-recommends \
  build-essential meson ninja-build pkg-config python3 \
  glslang-tools spirv-tools libvulkan-dev mesa-vulkan-drivers vulkan-validationlayers vulkan-tools \
  libglib2.0-dev libjson-glib-dev libgdk-pixbuf-2.0-dev libopenblas-dev libdnnl-dev \
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstrtspserver-1.0-dev \
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
  libcairo2-dev libpango1.0-dev valgrind \
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly \
  python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 \
  debhelper dpkg-dev \
  libmosquitto-dev mosquitto mosquitto-clients openssl
